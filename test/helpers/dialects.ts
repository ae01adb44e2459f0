import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

/**
 * A database of one dialect made for one test run: `url` is what the plugin's
 * `database` option takes; `drop()` removes it and everything in it.
 */
export interface ScratchDatabase {
  url: string
  drop: () => Promise<void>
}

export interface Dialect {
  name: 'sqlite' | 'postgres' | 'mysql'
  /** A fresh, empty database, or the reason there cannot be one here (the suite skips). */
  create: () => Promise<ScratchDatabase | { unavailable: string }>
}

// Servers this machine (and CI) runs; the variables point the suite elsewhere.
const POSTGRES_ADMIN = process.env.AUTH_KIT_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const MYSQL_ADMIN = process.env.AUTH_KIT_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306/test'

const scratchName = () => `auth_kit_test_${randomBytes(6).toString('hex')}`

function withDatabase (adminUrl: string, database: string): string {
  const url = new URL(adminUrl)
  url.pathname = `/${database}`
  return url.toString()
}

const sqlite: Dialect = {
  name: 'sqlite',
  async create () {
    const dir = mkdtempSync(join(tmpdir(), 'auth-kit-sqlite-'))
    return { url: `sqlite:${join(dir, 'auth-kit.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) }
  },
}

const postgres: Dialect = {
  name: 'postgres',
  async create () {
    const { default: pg } = await import('pg')
    const admin = new pg.Client({ connectionString: POSTGRES_ADMIN, connectionTimeoutMillis: 3000 })
    try {
      await admin.connect()
    } catch (err) {
      return { unavailable: `PostgreSQL is not reachable at ${POSTGRES_ADMIN} (${(err as Error).message}); set AUTH_KIT_TEST_POSTGRES to run this dialect` }
    }
    const name = scratchName()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    return {
      url: withDatabase(POSTGRES_ADMIN, name),
      drop: async () => {
        const client = new pg.Client({ connectionString: POSTGRES_ADMIN })
        await client.connect()
        // FORCE ends any connection still open, and a pg client of this process
        // that is ended so throws "terminating connection due to administrator
        // command" into the test (seen twice in CI). So first give connections
        // still closing, or idle in a pool (pg drops idle ones after 10 s),
        // the time to go; FORCE only after that.
        for (let waited = 0; waited < 15_000; waited += 200) {
          const { rows } = await client.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name])
          if (rows[0].n === 0) break
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        await client.end()
      },
    }
  },
}

const mysql: Dialect = {
  name: 'mysql',
  async create () {
    const { default: mysql2 } = await import('mysql2/promise')
    let admin
    try {
      admin = await mysql2.createConnection({ uri: MYSQL_ADMIN, connectTimeout: 3000 })
    } catch (err) {
      return { unavailable: `MySQL/MariaDB is not reachable at ${MYSQL_ADMIN} (${(err as Error).message}); set AUTH_KIT_TEST_MYSQL to run this dialect` }
    }
    const name = scratchName()
    await admin.query(`CREATE DATABASE ${name}`)
    await admin.end()
    return {
      url: withDatabase(MYSQL_ADMIN, name),
      drop: async () => {
        const client = await mysql2.createConnection({ uri: MYSQL_ADMIN })
        await client.query(`DROP DATABASE IF EXISTS ${name}`)
        await client.end()
      },
    }
  },
}

/** Every dialect the plugin supports; each test file decides what to do with an unavailable one. */
export const dialects: Dialect[] = [sqlite, postgres, mysql]

/**
 * One subtest per dialect, named `dialect` or `dialect: title`, on a fresh
 * scratch database dropped when the subtest ends (after the subtest's own
 * teardowns, which close its apps); where this machine has no such server, a
 * skipped subtest that says why.
 */
export async function onEveryDialect (t: Test, title: string | undefined, body: (t: Test, scratch: ScratchDatabase) => Promise<void>): Promise<void> {
  for (const dialect of dialects) {
    const scratch = await dialect.create()
    if ('unavailable' in scratch) {
      t.test(dialect.name, { skip: scratch.unavailable }, async () => {})
      continue
    }
    t.test(title === undefined ? dialect.name : `${dialect.name}: ${title}`, async (t) => {
      t.teardown(() => scratch.drop())
      await body(t, scratch)
    })
  }
}

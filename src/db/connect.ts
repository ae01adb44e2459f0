import { Kysely, Migrator, MysqlDialect, PostgresDialect } from 'kysely'
import { SqliteFileDialect } from './sqlite.js'
import type { Database } from './types.js'
import { migrations } from '../../migrations/index.js'
import { AuthKitOptionsError } from '../errors.js'

export interface OpenDatabase {
  db: Kysely<Database>
  /** True when the plugin made the instance and so must close it. */
  owned: boolean
}

export async function openDatabase (database: string | Kysely<any>): Promise<OpenDatabase> {
  if (typeof database !== 'string') return { db: database as Kysely<Database>, owned: false }
  if (database.startsWith('sqlite:')) {
    const { default: SQLite } = await import('better-sqlite3')
    const path = database.slice('sqlite:'.length)
    const sqlite = new SQLite(path === '' ? ':memory:' : path)
    // WAL and a busy wait let several processes share one file.
    if (path !== ':memory:' && path !== '') sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('busy_timeout = 5000')
    return { db: new Kysely<Database>({ dialect: new SqliteFileDialect(sqlite, path) }), owned: true }
  }
  if (/^postgres(ql)?:\/\//.test(database)) {
    const pg = await import('pg')
    const Pool = pg.default?.Pool ?? (pg as any).Pool
    // BIGINT arrives from pg as a string; every BIGINT here is a millisecond time, safe as a number.
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: new Pool({ connectionString: database }) }) }), owned: true }
  }
  if (database.startsWith('mysql://')) {
    const mysql = await import('mysql2')
    const createPool = mysql.default?.createPool ?? (mysql as any).createPool
    return { db: new Kysely<Database>({ dialect: new MysqlDialect({ pool: createPool({ uri: database, supportBigNumbers: true, bigNumberStrings: false }) }) }), owned: true }
  }
  throw new AuthKitOptionsError('database', `must be "sqlite:PATH", "sqlite::memory:", "postgres://…", "mysql://…" or a Kysely instance (got "${database.split(':')[0]}:…")`)
}

function migratorFor (db: Kysely<any>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    // Own bookkeeping tables, so a host's Kysely migrator is not confused.
    migrationTableName: 'auth_kit_migration',
    migrationLockTableName: 'auth_kit_migration_lock',
  })
}

/**
 * With `migrate: false` the tables must already be there: a database the
 * bundled migrations have not fully run on fails registration, not every request.
 */
export async function requireMigrated (db: Kysely<any>): Promise<void> {
  const pending = (await migratorFor(db).getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name)
  if (pending.length > 0) {
    throw new AuthKitOptionsError('migrate', `is false but the database lacks the bundled migrations ${pending.join(', ')}: run them (or set migrate: true) before registering the plugin`)
  }
}

export async function migrateToLatest (db: Kysely<any>): Promise<void> {
  const migrator = migratorFor(db)
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')
    throw new Error(`fastify-auth-kit: migration ${failed?.migrationName ?? ''} failed: ${String((error as Error).message ?? error)}`)
  }
}

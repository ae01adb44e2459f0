import { CompiledQuery, Kysely, Migrator, MysqlAdapter, MysqlDialect, PostgresDialect, sql } from 'kysely'
import { SqliteFileDialect } from './sqlite.js'
import type { Database } from './types.js'
import { migrations } from '../../migrations/index.js'
import { AuthKitOptionsError } from '../errors.js'

export interface OpenDatabase {
  db: Kysely<Database>
  /** True when the plugin made the instance and so must close it. */
  owned: boolean
}

/**
 * The drivers are optional peer dependencies (SPEC section 8): a host installs
 * the one its database needs. One that is missing fails registration with the
 * package to install, not a bare "Cannot find module" from deep inside.
 */
async function importDriver<T> (name: string, scheme: string): Promise<T> {
  try {
    return await import(name) as T
  } catch (err) {
    const code = (err as { code?: string }).code
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes(`'${name}'`)) {
      throw new AuthKitOptionsError('database', `is a ${scheme} URL, which needs the "${name}" package: install it with \`npm install ${name}\``)
    }
    throw err
  }
}

export async function openDatabase (database: string | Kysely<any>): Promise<OpenDatabase> {
  if (typeof database !== 'string') return { db: database as Kysely<Database>, owned: false }
  if (database.startsWith('sqlite:')) {
    const { default: SQLite } = await importDriver<{ default: typeof import('better-sqlite3') }>('better-sqlite3', 'sqlite:')
    const path = database.slice('sqlite:'.length)
    const sqlite = new SQLite(path === '' ? ':memory:' : path)
    // WAL and a busy wait let several processes share one file.
    // WAL lets several processes share one file. With WAL, synchronous NORMAL
    // syncs at checkpoints rather than at every commit: a power cut may lose the
    // last commits, never corrupt the file (README, "Databases").
    if (path !== ':memory:' && path !== '') {
      sqlite.pragma('journal_mode = WAL')
      sqlite.pragma('synchronous = NORMAL')
    }
    sqlite.pragma('busy_timeout = 5000')
    return { db: new Kysely<Database>({ dialect: new SqliteFileDialect(sqlite, path) }), owned: true }
  }
  if (/^postgres(ql)?:\/\//.test(database)) {
    const pg = await importDriver<typeof import('pg') & { default?: typeof import('pg') }>('pg', 'postgres://')
    const Pool = pg.default?.Pool ?? (pg as any).Pool
    // BIGINT arrives from pg as a string; every BIGINT here is a millisecond time, safe as a number.
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: new Pool({ connectionString: database }) }) }), owned: true }
  }
  if (database.startsWith('mysql://')) {
    const mysql = await importDriver<typeof import('mysql2') & { default?: typeof import('mysql2') }>('mysql2', 'mysql://')
    const createPool = mysql.default?.createPool ?? (mysql as any).createPool
    return {
      db: new Kysely<Database>({
        dialect: new MysqlDialect({
          pool: createPool({ uri: database, supportBigNumbers: true, bigNumberStrings: false }),
          // InnoDB's default, REPEATABLE READ, takes gap locks on every index
          // range a statement scans, so two users' unrelated writes (a delete
          // of rows that are not there, then an insert) deadlock each other.
          // READ COMMITTED, PostgreSQL's default, locks only rows that exist:
          // consistency comes from explicit row locks, the same on both.
          onCreateConnection: async (connection) => {
            await connection.executeQuery(CompiledQuery.raw('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED'))
          },
        }),
      }),
      owned: true,
    }
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

/**
 * `migrateAuthKit(db)`: runs the bundled migrations not yet run on `db` (a
 * host's Kysely instance, for hosts that register with `migrate: false`),
 * recorded in their own tables `auth_kit_migration` and
 * `auth_kit_migration_lock`; running it again does nothing. On MySQL and
 * MariaDB it then makes every `auth_kit_` table utf8mb4 with the binary
 * collation. Throws an `Error` "fastify-auth-kit: migration NAME failed: …"
 * (NAME empty when none was reached, e.g. the database cannot be reached);
 * on PostgreSQL and SQLite the run is one transaction and leaves nothing
 * half done, on MySQL a failed migration's earlier statements stay.
 */
export async function migrateToLatest (db: Kysely<any>): Promise<void> {
  const migrator = migratorFor(db)
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')
    throw new Error(`fastify-auth-kit: migration ${failed?.migrationName ?? ''} failed: ${String((error as Error).message ?? error)}`)
  }
  await useBinaryUtf8mb4(db)
}

/**
 * MySQL and MariaDB give a new table the database's default character set,
 * which may be latin1 or utf8mb3 (no emoji: a 500) with a collation that folds
 * case and accents (so "ádmin" would be "admin"). Identifiers are compared as
 * the plugin folds them, never as the database does (rule 11), so every
 * auth_kit_ table is made utf8mb4 with the binary collation here, after the
 * migrations: this covers tables any later migration creates with a plain
 * createTable, and converts nothing twice. An advisory lock keeps several
 * processes starting at once from converting one table together.
 */
export async function useBinaryUtf8mb4 (db: Kysely<any>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof MysqlAdapter)) return
  await db.connection().execute(async (conn) => {
    await sql`SELECT GET_LOCK('auth_kit_charset', 60)`.execute(conn)
    try {
      const { rows } = await sql<{ name: string }>`
        SELECT TABLE_NAME AS name FROM information_schema.TABLES
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
          AND TABLE_NAME LIKE 'auth\\_kit\\_%' AND (TABLE_COLLATION IS NULL OR TABLE_COLLATION <> 'utf8mb4_bin')`.execute(conn)
      for (const { name } of rows) {
        await sql`ALTER TABLE ${sql.table(name)} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`.execute(conn)
      }
    } finally {
      await sql`SELECT RELEASE_LOCK('auth_kit_charset')`.execute(conn)
    }
  })
}

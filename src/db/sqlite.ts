import { resolve } from 'node:path'
import { CompiledQuery, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler, type DatabaseConnection, type Dialect, type Driver, type Kysely, type QueryResult } from 'kysely'
import type BetterSqlite3 from 'better-sqlite3'

/** Prepared statements kept per connection (the plugin's queries are a few dozen shapes). */
const STATEMENT_CACHE_SIZE = 256
const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate')
const COMMIT = CompiledQuery.raw('commit')
const ROLLBACK = CompiledQuery.raw('rollback')

/**
 * A mutex that hands the lock straight to the next waiter. Taking a free lock
 * costs no extra promise: every query takes it, so it is on every request's path.
 */
class Mutex {
  private locked = false
  private readonly waiters: Array<() => void> = []

  async lock (): Promise<() => void> {
    if (this.locked) await new Promise<void>((resolve) => this.waiters.push(resolve))
    else this.locked = true
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiters.shift()
      // Still locked: the lock passes to the next waiter.
      if (next !== undefined) next()
      else this.locked = false
    }
  }
}

// One mutex per database file in this process. better-sqlite3 waits for a
// lock synchronously (busy_timeout), which would stall the event loop that
// the lock's holder needs to finish: so two connections of one process to
// one file take turns here, and only other processes meet SQLite's own lock.
const fileMutexes = new Map<string, Mutex>()
function mutexFor (path: string): Mutex {
  const key = path === ':memory:' || path === '' ? `memory:${Math.random()}` : resolve(path)
  let mutex = fileMutexes.get(key)
  if (mutex === undefined) fileMutexes.set(key, mutex = new Mutex())
  return mutex
}

/** A prepared statement and whether it returns rows (read once: a property of a native object costs a call). */
interface CachedStatement {
  stmt: BetterSqlite3.Statement
  reader: boolean
}

class SqliteFileConnection implements DatabaseConnection {
  private readonly statements = new Map<string, CachedStatement>()
  constructor (private readonly db: BetterSqlite3.Database) {}

  private prepare (sql: string): CachedStatement {
    let cached = this.statements.get(sql)
    if (cached === undefined) {
      const stmt = this.db.prepare(sql)
      cached = { stmt, reader: stmt.reader }
      if (this.statements.size >= STATEMENT_CACHE_SIZE) this.statements.delete(this.statements.keys().next().value!)
      this.statements.set(sql, cached)
    }
    return cached
  }

  async executeQuery<R> (compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const { stmt, reader } = this.prepare(compiledQuery.sql)
    const parameters = compiledQuery.parameters as unknown[]
    if (reader) return { rows: stmt.all(parameters) as R[] }
    const { changes } = stmt.run(parameters)
    return { numAffectedRows: BigInt(changes), rows: [] }
  }

  // eslint-disable-next-line require-yield
  async * streamQuery<R> (): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('fastify-auth-kit: streaming is not used')
  }
}

class SqliteFileDriver implements Driver {
  private readonly connection: SqliteFileConnection
  private readonly mutex: Mutex
  private release: (() => void) | undefined
  constructor (private readonly db: BetterSqlite3.Database, path: string) {
    this.connection = new SqliteFileConnection(db)
    this.mutex = mutexFor(path)
  }

  async init (): Promise<void> {}

  async acquireConnection (): Promise<DatabaseConnection> {
    this.release = await this.mutex.lock()
    return this.connection
  }

  // IMMEDIATE: the write lock is taken at BEGIN, where SQLite's busy wait
  // applies, rather than at the first write, where it may fail at once.
  async beginTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(BEGIN_IMMEDIATE)
  }

  async commitTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(COMMIT)
  }

  async rollbackTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(ROLLBACK)
  }

  async releaseConnection (): Promise<void> {
    const release = this.release
    this.release = undefined
    release?.()
  }

  async destroy (): Promise<void> {
    this.db.close()
  }
}

/**
 * SQLite's adapter, for a connection whose transactions take the database's
 * write lock at BEGIN (IMMEDIATE): inside one, nothing more is needed to hold
 * a user's lock (db/user-lock.ts).
 */
export class SqliteImmediateAdapter extends SqliteAdapter {
  readonly writeLockedAtBegin = true
}

/**
 * Kysely's dialect for a better-sqlite3 database the plugin opened: one
 * connection, prepared statements reused, transactions that take the write
 * lock at BEGIN, and one turn at a time per file within a process.
 */
export class SqliteFileDialect implements Dialect {
  constructor (private readonly db: BetterSqlite3.Database, private readonly path: string) {}
  createAdapter (): SqliteAdapter { return new SqliteImmediateAdapter() }
  createDriver (): Driver { return new SqliteFileDriver(this.db, this.path) }
  createQueryCompiler (): SqliteQueryCompiler { return new SqliteQueryCompiler() }
  createIntrospector (db: Kysely<any>): SqliteIntrospector { return new SqliteIntrospector(db) }
}

import { MysqlAdapter, PostgresAdapter, type Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { prepare } from '../db/prepared.js'
import { SqliteImmediateAdapter } from '../db/sqlite.js'
import { type MethodRow, ofUser, toMethod } from './methods.js'

/** A user's wrong-code count and lock (rule 5); its row is also the user's mutex. */
export interface UserLockRow {
  failures: number
  lockCount: number
  /** Milliseconds; the user is locked while this is in the future. */
  lockedUntil: number
}

const findRow = prepare((db, userId: string) => db.selectFrom('auth_kit_user_lock').selectAll().where('user_id', '=', userId))
const findRowForUpdate = prepare((db, userId: string) => db.selectFrom('auth_kit_user_lock').selectAll().where('user_id', '=', userId).forUpdate())
const touchRow = prepare((db, userId: string) => db.updateTable('auth_kit_user_lock').set((eb) => ({ lock_count: eb.ref('lock_count') })).where('user_id', '=', userId))
const findRowWithMethods = prepare((db, userId: string) => db.selectFrom('auth_kit_user_lock as l')
  .leftJoin('auth_kit_mfa_method as m', 'm.user_id', 'l.user_id')
  .select(['l.failures as l_failures', 'l.lock_count as l_lock_count', 'l.locked_until as l_locked_until'])
  .selectAll('m')
  .where('l.user_id', '=', userId).orderBy('m.created_at').orderBy('m.id'))
const saveRow = prepare((db, userId: string, failures: number, lockCount: number, lockedUntil: number) => db.updateTable('auth_kit_user_lock')
  .set({ failures, lock_count: lockCount, locked_until: lockedUntil }).where('user_id', '=', userId))

/**
 * How a transaction takes a user's row for writing on this database:
 * - `begin`: it already holds the database's write lock (the plugin's own
 *   SQLite connection begins IMMEDIATE), so a plain read is enough;
 * - `for-update`: a row lock by `SELECT … FOR UPDATE` (PostgreSQL, MySQL), held
 *   to commit, that writes no new row version;
 * - `write`: a write that changes nothing, the one lock every dialect shares
 *   (any other dialect, such as a host's own SQLite instance, whose deferred
 *   BEGIN takes the write lock only at the first write).
 */
function lockKind (db: Kysely<Database>): 'begin' | 'for-update' | 'write' {
  const adapter = db.getExecutor().adapter
  if (adapter instanceof SqliteImmediateAdapter) return 'begin'
  if (adapter instanceof PostgresAdapter || adapter instanceof MysqlAdapter) return 'for-update'
  return 'write'
}

function toLock (row: { failures: unknown, lock_count: unknown, locked_until: unknown } | undefined): UserLockRow | undefined {
  if (row === undefined) return undefined
  return { failures: Number(row.failures), lockCount: Number(row.lock_count), lockedUntil: Number(row.locked_until) }
}

export class UserLockRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async find (userId: string): Promise<UserLockRow | undefined> {
    return toLock(await findRow.first(this.db, userId))
  }

  /** Creates the user's row if it is missing (outside any transaction: a racing insert is harmless). */
  async ensure (userId: string): Promise<void> {
    try {
      await this.db.insertInto('auth_kit_user_lock').values({ user_id: userId, failures: 0, lock_count: 0, locked_until: 0 }).execute()
    } catch {
      // Another request created it first.
    }
  }

  /**
   * Inside a transaction: takes the user's row for writing and reads it, so a
   * second transaction for the same user, in any process, waits here until
   * this one ends (see lockKind for how each database does it). Undefined when
   * the row does not exist yet.
   */
  async hold (userId: string): Promise<UserLockRow | undefined> {
    switch (lockKind(this.db)) {
      case 'begin': return this.find(userId)
      case 'for-update': return toLock(await findRowForUpdate.first(this.db, userId))
      case 'write':
        await touchRow.run(this.db, userId)
        return this.find(userId)
    }
  }

  /**
   * `hold`, and the user's methods (oldest first, as MethodRepository.listByUser
   * lists them) read under the same lock: one query where the lock is a plain
   * read (the plugin's own SQLite, whose BEGIN IMMEDIATE already holds the
   * write lock), two elsewhere. Undefined when the lock row does not exist yet.
   */
  async holdWithMethods (userId: string): Promise<{ lock: UserLockRow, methods: MethodRow[] } | undefined> {
    if (lockKind(this.db) !== 'begin') {
      const lock = await this.hold(userId)
      if (lock === undefined) return undefined
      return { lock, methods: (await ofUser.all(this.db, userId)).map(toMethod) }
    }
    const rows = await findRowWithMethods.all(this.db, userId)
    if (rows.length === 0) return undefined
    const first = rows[0]
    const lock = toLock({ failures: first.l_failures, lock_count: first.l_lock_count, locked_until: first.l_locked_until })!
    const methods = rows.filter((r) => r.id !== null).map((r) => toMethod(r as Parameters<typeof toMethod>[0]))
    return { lock, methods }
  }

  async save (userId: string, row: UserLockRow): Promise<void> {
    await saveRow.run(this.db, userId, row.failures, row.lockCount, row.lockedUntil)
  }
}

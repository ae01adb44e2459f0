import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'

/** A user's wrong-code count and lock (rule 5); its row is also the user's mutex. */
export interface UserLockRow {
  failures: number
  lockCount: number
  /** Milliseconds; the user is locked while this is in the future. */
  lockedUntil: number
}

export class UserLockRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async find (userId: string): Promise<UserLockRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_user_lock').selectAll().where('user_id', '=', userId).executeTakeFirst()
    if (row === undefined) return undefined
    return { failures: Number(row.failures), lockCount: Number(row.lock_count), lockedUntil: Number(row.locked_until) }
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
   * Inside a transaction: takes the user's row for writing and reads it. A
   * write is the one lock every dialect shares: a row lock on PostgreSQL and
   * MySQL (held to commit, so a second transaction waits here), the database
   * write lock on SQLite. Undefined when the row does not exist yet.
   */
  async hold (userId: string): Promise<UserLockRow | undefined> {
    await this.db.updateTable('auth_kit_user_lock').set((eb) => ({ lock_count: eb.ref('lock_count') })).where('user_id', '=', userId).execute()
    return this.find(userId)
  }

  async save (userId: string, row: UserLockRow): Promise<void> {
    await this.db.updateTable('auth_kit_user_lock')
      .set({ failures: row.failures, lock_count: row.lockCount, locked_until: row.lockedUntil })
      .where('user_id', '=', userId).execute()
  }
}

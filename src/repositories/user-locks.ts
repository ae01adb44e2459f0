import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { affected, toNumber } from './normalize.js'

export interface UserLockRow {
  failures: number
  lockCount: number
  lockedUntil: number
}

export class UserLockRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async find (userId: string): Promise<UserLockRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_user_lock').selectAll().where('user_id', '=', userId).executeTakeFirst()
    if (row === undefined) return undefined
    return { failures: toNumber(row.failures), lockCount: toNumber(row.lock_count), lockedUntil: toNumber(row.locked_until) }
  }

  async ensure (userId: string): Promise<void> {
    if (await this.find(userId) !== undefined) return
    try {
      await this.db.insertInto('auth_kit_user_lock').values({ user_id: userId, failures: 0, lock_count: 0, locked_until: 0 }).execute()
    } catch {
      // Another request created it between the read and the insert.
    }
  }

  /**
   * Counts one code check in advance, unless the user is locked or as many
   * checks as the threshold allows are already counted: concurrent requests
   * cannot test more codes than the threshold.
   */
  async reserveCheck (userId: string, threshold: number, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_user_lock')
      .set((eb) => ({ failures: eb('failures', '+', 1) }))
      .where('user_id', '=', userId).where('failures', '<', threshold).where('locked_until', '<=', now)
      .executeTakeFirst()
    return affected(result) === 1
  }

  /** Locks the user if the count reached the threshold; true for the one caller that locked. */
  async lockIfReached (userId: string, threshold: number, lockCount: number, lockedUntil: number, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_user_lock')
      .set({ failures: 0, lock_count: lockCount + 1, locked_until: lockedUntil })
      .where('user_id', '=', userId).where('failures', '>=', threshold).where('lock_count', '=', lockCount).where('locked_until', '<=', now)
      .executeTakeFirst()
    return affected(result) === 1
  }

  /** Gives back a reserved check that ended without looking at a code. */
  async release (userId: string): Promise<void> {
    await this.db.updateTable('auth_kit_user_lock').set((eb) => ({ failures: eb('failures', '-', 1) }))
      .where('user_id', '=', userId).where('failures', '>', 0).execute()
  }

  /** A right code: the count and the doubling start over. */
  async reset (userId: string): Promise<void> {
    await this.db.updateTable('auth_kit_user_lock').set({ failures: 0, lock_count: 0 }).where('user_id', '=', userId).execute()
  }
}

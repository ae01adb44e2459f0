import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { affected, toNumber } from './normalize.js'
import { isUniqueViolation } from './db-errors.js'

export interface LoginFailureWindow {
  failures: number
  expiresAt: number
}

/** Counts of wrong passwords, one row per throttle key and window. */
export class LoginFailureRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async find (key: string): Promise<LoginFailureWindow | undefined> {
    const row = await this.db.selectFrom('auth_kit_login_failure').select(['failures', 'expires_at'])
      .where('throttle_key', '=', key).executeTakeFirst()
    return row === undefined ? undefined : { failures: toNumber(row.failures), expiresAt: toNumber(row.expires_at) }
  }

  /** A row with no failures yet, unless there is one. */
  async ensure (key: string, scope: string, expiresAt: number): Promise<void> {
    if (await this.find(key) !== undefined) return
    try {
      await this.db.insertInto('auth_kit_login_failure').values({ throttle_key: key, scope, failures: 0, expires_at: expiresAt }).execute()
    } catch (err) {
      // Another request made it between the read and the insert.
      if (!isUniqueViolation(err)) throw err
    }
  }

  /** Counts one more failure in a live window, unless it already holds `limit`; true if counted. */
  async countInWindow (key: string, limit: number, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_login_failure')
      .set((eb) => ({ failures: eb('failures', '+', 1) }))
      .where('throttle_key', '=', key).where('failures', '<', limit).where('expires_at', '>', now)
      .executeTakeFirst()
    return affected(result) === 1
  }

  /** Starts a new window holding one failure, if the row's window is over; true if this caller started it. */
  async restartWindow (key: string, now: number, expiresAt: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_login_failure')
      .set({ failures: 1, expires_at: expiresAt })
      .where('throttle_key', '=', key).where('expires_at', '<=', now)
      .executeTakeFirst()
    return affected(result) === 1
  }

  /** Gives back one counted failure (a check that turned out right). */
  async giveBack (key: string): Promise<void> {
    await this.db.updateTable('auth_kit_login_failure').set((eb) => ({ failures: eb('failures', '-', 1) }))
      .where('throttle_key', '=', key).where('failures', '>', 0).execute()
  }

  async clear (key: string): Promise<void> {
    await this.db.deleteFrom('auth_kit_login_failure').where('throttle_key', '=', key).execute()
  }

  async purgeExpired (now: number): Promise<void> {
    await this.db.deleteFrom('auth_kit_login_failure').where('expires_at', '<=', now).execute()
  }
}

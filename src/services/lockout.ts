import type { Transaction } from 'kysely'
import type { Database } from '../db/types.js'
import type { UserTransaction } from '../db/user-lock.js'
import { UserLockRepository } from '../repositories/user-locks.js'
import { AuthKitErrors, retryLater } from '../errors.js'
import type { ResolvedOptions } from '../options.js'

/** The longest lock, in seconds: the doubling stops at a day. */
export const MAX_LOCK_SECONDS = 86400

export type LockoutSettings = Pick<ResolvedOptions['mfa'], 'lockoutThreshold' | 'lockoutDuration'>

/** What one code check under the lockout came to. */
export interface CodeVerdict {
  right: boolean
  /** This wrong code started a lock (the `user_locked` event is due). */
  lockedNow: boolean
}

/**
 * Rule 5: consecutive wrong codes per user, across attempts, methods and
 * routes. Runs inside the user's locked transaction (db/user-lock.ts), so
 * the count is exact however many processes check codes at once.
 */
export class LockoutService {
  constructor (private readonly props: { settings: LockoutSettings, now: () => number }) {}

  /**
   * 429 `AUTH_KIT_TOO_MANY_ATTEMPTS` (with `retryAfter`, seconds) while the user
   * is locked, before any code is looked at; otherwise runs `check` and keeps
   * its outcome: a right code resets the count and the doubling, the wrong
   * code that reaches the threshold starts a lock.
   */
  async check ({ trx, lock }: UserTransaction, userId: string, check: () => Promise<boolean>): Promise<CodeVerdict> {
    this.refuseIfLocked({ trx, lock })
    const right = await check()
    const locks = new UserLockRepository(trx as Transaction<Database>)
    if (right) {
      if (lock.failures !== 0 || lock.lockCount !== 0) await locks.save(userId, { failures: 0, lockCount: 0, lockedUntil: lock.lockedUntil })
      return { right, lockedNow: false }
    }
    const failures = lock.failures + 1
    if (failures < this.props.settings.lockoutThreshold) {
      await locks.save(userId, { ...lock, failures })
      return { right, lockedNow: false }
    }
    const seconds = this.lockSeconds(lock.lockCount)
    await locks.save(userId, { failures: 0, lockCount: lock.lockCount + 1, lockedUntil: this.props.now() + seconds * 1000 })
    return { right, lockedNow: true }
  }

  /** 429 while the user is locked. */
  refuseIfLocked ({ lock }: UserTransaction): void {
    const now = this.props.now()
    if (lock.lockedUntil > now) throw retryLater(AuthKitErrors.TooManyAttempts, (lock.lockedUntil - now) / 1000)
  }

  /** Seconds of the lock after `lockCount` earlier ones. */
  lockSeconds (lockCount: number): number {
    return Math.min(MAX_LOCK_SECONDS, this.props.settings.lockoutDuration * 2 ** Math.min(lockCount, 32))
  }
}

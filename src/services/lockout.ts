import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { UserLockRepository } from '../repositories/user-locks.js'
import { AuthKitErrors, withRetryAfter } from '../errors.js'
import type { EventBus, RequestContext } from './events.js'

const MAX_LOCK_SECONDS = 86400

export type CodeOutcome = 'right' | 'wrong' | 'skipped'

/**
 * Rule 5: consecutive wrong codes per user, across attempts, methods and
 * routes, kept in the database so every process shares one count.
 */
export class LockoutService {
  private readonly locks: UserLockRepository
  constructor (
    db: Kysely<Database>,
    private readonly settings: { lockoutThreshold: number, lockoutDuration: number },
    private readonly events: EventBus,
    private readonly now: () => number,
  ) {
    this.locks = new UserLockRepository(db)
  }

  /**
   * Runs one code check under the lock. Locked users get 429 before the code is
   * looked at; a right code resets the count; the wrong code that reaches the
   * threshold starts a lock (and still gets its own answer).
   */
  async check (ctx: RequestContext, userId: string, method: string | undefined, checkCode: () => Promise<boolean>): Promise<boolean> {
    return (await this.checkOutcome(ctx, userId, method, async () => (await checkCode()) ? 'right' : 'wrong')) === 'right'
  }

  /** As check(), for callers that may end without looking at a code ('skipped' counts nothing). */
  async checkOutcome (ctx: RequestContext, userId: string, method: string | undefined, checkCode: () => Promise<CodeOutcome>): Promise<CodeOutcome> {
    const { lockoutThreshold } = this.settings
    await this.locks.ensure(userId)
    if (!(await this.locks.reserveCheck(userId, lockoutThreshold, this.now()))) {
      const row = await this.locks.find(userId)
      const wait = row !== undefined && row.lockedUntil > this.now() ? (row.lockedUntil - this.now()) / 1000 : 1
      throw withRetryAfter(new AuthKitErrors.TooManyAttempts(), wait)
    }
    let outcome: CodeOutcome = 'wrong'
    try {
      outcome = await checkCode()
    } finally {
      if (outcome === 'right') await this.locks.reset(userId)
      else if (outcome === 'skipped') await this.locks.release(userId)
      else await this.lockIfReached(ctx, userId, method)
    }
    return outcome
  }

  private async lockIfReached (ctx: RequestContext, userId: string, method: string | undefined): Promise<void> {
    const row = await this.locks.find(userId)
    if (row === undefined || row.failures < this.settings.lockoutThreshold) return
    const now = this.now()
    const seconds = Math.min(MAX_LOCK_SECONDS, this.settings.lockoutDuration * 2 ** Math.min(row.lockCount, 32))
    if (await this.locks.lockIfReached(userId, this.settings.lockoutThreshold, row.lockCount, now + seconds * 1000, now)) {
      this.events.emit('user_locked', ctx, userId, method)
    }
  }
}

import type { ExpressionBuilder, Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { toNullableNumber, toNumber } from './normalize.js'
import { prepare } from '../db/prepared.js'

export interface LoginAttemptRow {
  id: string
  userId: string
  method: string
  failures: number
  expiresAt: number
  usedAt: number | null
}

const insertRow = prepare((db, id: string, tokenHash: string, userId: string, method: string, expiresAt: number, createdAt: number) =>
  db.insertInto('auth_kit_login_attempt').values({
    id, token_hash: tokenHash, user_id: userId, method, failures: 0, expires_at: expiresAt, used_at: null, created_at: createdAt,
  }))
const byHashes = prepare((db, hashes: string[]) => db.selectFrom('auth_kit_login_attempt').selectAll().where('token_hash', 'in', hashes))
const byHashesWithUser = prepare((db, hashes: string[]) => db.selectFrom('auth_kit_login_attempt as a')
  .leftJoin('auth_kit_user as u', 'u.id', 'a.user_id')
  .selectAll('a')
  .select(['u.id as u_id', 'u.username as u_username', 'u.email as u_email', 'u.created_at as u_created_at'])
  .where('a.token_hash', 'in', hashes))
const byId = prepare((db, id: string) => db.selectFrom('auth_kit_login_attempt').selectAll().where('id', '=', id))
/**
 * Rule 2 in SQL: an attempt is usable while unused, unexpired at `now`
 * (milliseconds) and under `maxFailures` wrong codes. Every write that must
 * not touch a dead attempt says so in its WHERE, so no second read of the
 * attempt is needed under the user's lock; LoginService's `usable` is the
 * same test on a row already read.
 */
function usable (eb: ExpressionBuilder<Database, 'auth_kit_login_attempt'>, now: number, maxFailures: number) {
  return eb.and([eb('used_at', 'is', null), eb('expires_at', '>', now), eb('failures', '<', maxFailures)])
}
const countFailure = prepare((db, id: string, now: number, maxFailures: number) => db.updateTable('auth_kit_login_attempt')
  .set((eb) => ({ failures: eb('failures', '+', 1) }))
  .where('id', '=', id).where((eb) => usable(eb, now, maxFailures)))
const markUsedIfUsable = prepare((db, id: string, now: number, maxFailures: number, method: string) => db.updateTable('auth_kit_login_attempt')
  .set({ used_at: now })
  .where('id', '=', id).where((eb) => usable(eb, now, maxFailures)).where('method', '=', method))
const rebindIfUsable = prepare((db, id: string, method: string, now: number, maxFailures: number) => db.updateTable('auth_kit_login_attempt')
  .set({ method })
  .where('id', '=', id).where((eb) => usable(eb, now, maxFailures)))
const purgeExpiredOf = prepare((db, userId: string, now: number) => db.deleteFrom('auth_kit_login_attempt').where('user_id', '=', userId).where('expires_at', '<=', now))

type AttemptRecord = { id: string, user_id: string, method: string, failures: unknown, expires_at: unknown, used_at: unknown }

function toAttempt (row: AttemptRecord | undefined): LoginAttemptRow | undefined {
  if (row === undefined) return undefined
  return { id: row.id, userId: row.user_id, method: row.method, failures: toNumber(row.failures), expiresAt: toNumber(row.expires_at), usedAt: toNullableNumber(row.used_at) }
}

export class LoginAttemptRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async insert (row: { id: string, tokenHash: string, userId: string, method: string, expiresAt: number, createdAt: number }): Promise<void> {
    await insertRow.run(this.db, row.id, row.tokenHash, row.userId, row.method, row.expiresAt, row.createdAt)
  }

  async findByHashes (hashes: string[]): Promise<LoginAttemptRow | undefined> {
    return toAttempt(await byHashes.first(this.db, hashes))
  }

  /**
   * The attempt and, in the same read, its user from the built-in user table
   * (without the password hash), or `user: undefined` when the table no longer
   * has it. Only for the built-in user store.
   */
  async findByHashesWithUser (hashes: string[]): Promise<{ attempt: LoginAttemptRow, user: { id: string, username: string, email: string | null, createdAt: number } | undefined } | undefined> {
    const row = await byHashesWithUser.first(this.db, hashes)
    if (row === undefined) return undefined
    const user = row.u_id === null ? undefined : { id: row.u_id, username: row.u_username!, email: row.u_email ?? null, createdAt: toNumber(row.u_created_at) }
    return { attempt: toAttempt(row)!, user }
  }

  async findById (id: string): Promise<LoginAttemptRow | undefined> {
    return toAttempt(await byId.first(this.db, id))
  }

  /**
   * One more wrong code for the attempt, if it is still usable at `now`
   * (milliseconds) with fewer than `maxFailures` wrong codes; false if it is
   * not (used, expired or killed meanwhile), and then nothing changed.
   */
  async fail (id: string, now: number, maxFailures: number): Promise<boolean> {
    return (await countFailure.run(this.db, id, now, maxFailures)) === 1
  }

  /**
   * The attempt's one successful verify, only if it is still usable at `now`
   * (milliseconds), has fewer than `maxFailures` wrong codes and is still bound
   * to `method`; false otherwise, and then nothing changed.
   */
  async markUsedIfUsable (id: string, now: number, maxFailures: number, method: string): Promise<boolean> {
    return (await markUsedIfUsable.run(this.db, id, now, maxFailures, method)) === 1
  }



  /**
   * Binds the attempt to `method`, only if it is still usable at `now`
   * (milliseconds) with fewer than `maxFailures` wrong codes; false if it is
   * not (used, expired or killed since it was read), and then nothing changed.
   */
  async rebind (id: string, method: string, now: number, maxFailures: number): Promise<boolean> {
    return (await rebindIfUsable.run(this.db, id, method, now, maxFailures)) === 1
  }


  /** Every live attempt of the user stops working (the user is gone, rule 12). */
  async killAllOf (userId: string, now: number): Promise<void> {
    await this.db.updateTable('auth_kit_login_attempt').set({ used_at: now }).where('user_id', '=', userId).where('used_at', 'is', null).execute()
  }

  /** The user's attempts that have expired: nothing refers to them any more. */
  async purgeExpired (userId: string, now: number): Promise<void> {
    await purgeExpiredOf.run(this.db, userId, now)
  }
}

import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { affected, toNullableNumber, toNumber } from './normalize.js'

export interface LoginAttemptRow {
  id: string
  userId: string
  method: string
  failures: number
  expiresAt: number
  usedAt: number | null
}

export class LoginAttemptRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async insert (row: { id: string, tokenHash: string, userId: string, method: string, expiresAt: number, createdAt: number }): Promise<void> {
    await this.db.insertInto('auth_kit_login_attempt').values({
      id: row.id, token_hash: row.tokenHash, user_id: row.userId, method: row.method,
      failures: 0, expires_at: row.expiresAt, used_at: null, created_at: row.createdAt,
    }).execute()
  }

  async findByHashes (hashes: string[]): Promise<LoginAttemptRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_login_attempt').selectAll()
      .where('token_hash', 'in', hashes).executeTakeFirst()
    if (row === undefined) return undefined
    return { id: row.id, userId: row.user_id, method: row.method, failures: toNumber(row.failures), expiresAt: toNumber(row.expires_at), usedAt: toNullableNumber(row.used_at) }
  }

  /**
   * Takes one of the attempt's code checks and holds the attempt while the code
   * is looked at, in one statement: a parallel verify of the same token is
   * refused before it can use up a code of its own (rule 8).
   */
  async claimForCheck (id: string, max: number, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_login_attempt')
      .set((eb) => ({ failures: eb('failures', '+', 1), used_at: now }))
      .where('id', '=', id).where('failures', '<', max).where('used_at', 'is', null).where('expires_at', '>', now)
      .executeTakeFirst()
    return affected(result) === 1
  }

  /** Lets go of a claim whose code was wrong; the counted check stays counted. */
  async releaseClaim (id: string, claimedAt: number): Promise<void> {
    await this.db.updateTable('auth_kit_login_attempt').set({ used_at: null })
      .where('id', '=', id).where('used_at', '=', claimedAt).execute()
  }

  async rebind (id: string, method: string): Promise<void> {
    await this.db.updateTable('auth_kit_login_attempt').set({ method }).where('id', '=', id).execute()
  }

  /** The user's attempts that have expired: nothing refers to them any more. */
  async purgeExpired (userId: string, now: number): Promise<void> {
    await this.db.deleteFrom('auth_kit_login_attempt').where('user_id', '=', userId).where('expires_at', '<=', now).execute()
  }
}

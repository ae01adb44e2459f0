import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { affected, toNumber } from './normalize.js'

/** The live challenge of one method and scope (SPEC section 10). */
export interface ChallengeRow {
  id: string
  userId: string
  methodId: string
  scope: string
  challengeHash: string
  /** Milliseconds. */
  expiresAt: number
}

export class ChallengeRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async find (methodId: string, scope: string): Promise<ChallengeRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_challenge').selectAll()
      .where('method_id', '=', methodId).where('scope', '=', scope).executeTakeFirst()
    if (row === undefined) return undefined
    return { id: row.id, userId: row.user_id, methodId: row.method_id, scope: row.scope, challengeHash: row.challenge_hash, expiresAt: toNumber(row.expires_at) }
  }

  /**
   * Replaces the challenge of the row's method and scope, or creates it; false
   * if a racing writer created it first. Not for use inside a transaction (a
   * refused insert would end it on PostgreSQL).
   */
  async replace (row: ChallengeRow, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_challenge')
      .set({ challenge_hash: row.challengeHash, expires_at: row.expiresAt, created_at: now })
      .where('method_id', '=', row.methodId).where('scope', '=', row.scope).executeTakeFirst()
    if (affected(result) === 1) return true
    try {
      await this.db.insertInto('auth_kit_challenge').values({
        id: row.id, user_id: row.userId, method_id: row.methodId, scope: row.scope, challenge_hash: row.challengeHash, expires_at: row.expiresAt, created_at: now,
      }).execute()
      return true
    } catch {
      return false
    }
  }

  /** Uses the challenge up, only if it is still the one read and unexpired: true for exactly one caller. */
  async consume (id: string, challengeHash: string, now: number): Promise<boolean> {
    const result = await this.db.deleteFrom('auth_kit_challenge')
      .where('id', '=', id).where('challenge_hash', '=', challengeHash).where('expires_at', '>', now).executeTakeFirst()
    return affected(result) === 1
  }

  /** The user's expired challenges: nothing can use them any more. */
  async purgeExpired (userId: string, now: number): Promise<void> {
    await this.db.deleteFrom('auth_kit_challenge').where('user_id', '=', userId).where('expires_at', '<=', now).execute()
  }

  async deleteForMethod (methodId: string): Promise<void> {
    await this.db.deleteFrom('auth_kit_challenge').where('method_id', '=', methodId).execute()
  }
}

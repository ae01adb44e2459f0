import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { affected, toNullableNumber, toNumber } from './normalize.js'

export interface RefreshTokenRow {
  id: string
  familyId: string
  userId: string
  amr: string[]
  expiresAt: number
  revokedAt: number | null
}

export class RefreshTokenRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async insert (row: { id: string, familyId: string, userId: string, tokenHash: string, amr: string[], expiresAt: number, createdAt: number }): Promise<void> {
    await this.db.insertInto('auth_kit_refresh_token').values({
      id: row.id, family_id: row.familyId, user_id: row.userId, token_hash: row.tokenHash,
      amr: row.amr.join(' '), expires_at: row.expiresAt, revoked_at: null, created_at: row.createdAt,
    }).execute()
  }

  async findByHashes (hashes: string[]): Promise<RefreshTokenRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_refresh_token').selectAll().where('token_hash', 'in', hashes).executeTakeFirst()
    if (row === undefined) return undefined
    return {
      id: row.id, familyId: row.family_id, userId: row.user_id, amr: row.amr.split(' ').filter(Boolean),
      expiresAt: toNumber(row.expires_at), revokedAt: toNullableNumber(row.revoked_at),
    }
  }

  /** True for exactly one caller: rotation and logout each spend a token once. */
  async revoke (id: string, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_refresh_token').set({ revoked_at: now })
      .where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst()
    return affected(result) === 1
  }

  async revokeFamily (familyId: string, now: number): Promise<void> {
    await this.db.updateTable('auth_kit_refresh_token').set({ revoked_at: now })
      .where('family_id', '=', familyId).where('revoked_at', 'is', null).execute()
  }

  /** The user's expired tokens: no longer needed to detect reuse. */
  async purgeExpired (userId: string, now: number): Promise<void> {
    await this.db.deleteFrom('auth_kit_refresh_token').where('user_id', '=', userId).where('expires_at', '<=', now).execute()
  }
}

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

  async findById (id: string): Promise<LoginAttemptRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_login_attempt').selectAll().where('id', '=', id).executeTakeFirst()
    if (row === undefined) return undefined
    return { id: row.id, userId: row.user_id, method: row.method, failures: toNumber(row.failures), expiresAt: toNumber(row.expires_at), usedAt: toNullableNumber(row.used_at) }
  }

  /** One more wrong code for the attempt. */
  async fail (id: string): Promise<void> {
    await this.db.updateTable('auth_kit_login_attempt').set((eb) => ({ failures: eb('failures', '+', 1) })).where('id', '=', id).execute()
  }

  /** The attempt's one successful verify; false if it was used already. */
  async markUsed (id: string, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_login_attempt').set({ used_at: now })
      .where('id', '=', id).where('used_at', 'is', null).executeTakeFirst()
    return affected(result) === 1
  }

  async rebind (id: string, method: string): Promise<void> {
    await this.db.updateTable('auth_kit_login_attempt').set({ method }).where('id', '=', id).where('used_at', 'is', null).execute()
  }

  /** Every live attempt of the user stops working (the user is gone, rule 12). */
  async killAllOf (userId: string, now: number): Promise<void> {
    await this.db.updateTable('auth_kit_login_attempt').set({ used_at: now }).where('user_id', '=', userId).where('used_at', 'is', null).execute()
  }

  /** The user's attempts that have expired: nothing refers to them any more. */
  async purgeExpired (userId: string, now: number): Promise<void> {
    await this.db.deleteFrom('auth_kit_login_attempt').where('user_id', '=', userId).where('expires_at', '<=', now).execute()
  }
}

import type { Kysely, Selectable } from 'kysely'
import type { Database, TrustedDeviceTable } from '../db/types.js'
import { affected, toNumber } from './normalize.js'

/** A remembered device: its token skips the second step until `expiresAt`. */
export interface TrustedDeviceRow {
  id: string
  userId: string
  label: string
  /** Milliseconds; also the `auth_time` of a login it skips the second step of. */
  createdAt: number
  lastUsedAt: number
  expiresAt: number
}

function toDevice (row: Selectable<TrustedDeviceTable>): TrustedDeviceRow {
  return {
    id: row.id, userId: row.user_id, label: row.label,
    createdAt: toNumber(row.created_at), lastUsedAt: toNumber(row.last_used_at), expiresAt: toNumber(row.expires_at),
  }
}

export class TrustedDeviceRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async insert (row: TrustedDeviceRow & { tokenHash: string }): Promise<void> {
    await this.db.insertInto('auth_kit_trusted_device').values({
      id: row.id, user_id: row.userId, token_hash: row.tokenHash, label: row.label,
      created_at: row.createdAt, last_used_at: row.lastUsedAt, expires_at: row.expiresAt,
    }).execute()
  }

  async findByHashes (hashes: string[]): Promise<TrustedDeviceRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_trusted_device').selectAll().where('token_hash', 'in', hashes).executeTakeFirst()
    return row === undefined ? undefined : toDevice(row)
  }

  async listLive (userId: string, now: number): Promise<TrustedDeviceRow[]> {
    const rows = await this.db.selectFrom('auth_kit_trusted_device').selectAll()
      .where('user_id', '=', userId).where('expires_at', '>', now).orderBy('created_at', 'desc').orderBy('id', 'desc').execute()
    return rows.map(toDevice)
  }

  async touch (id: string, now: number): Promise<void> {
    await this.db.updateTable('auth_kit_trusted_device').set({ last_used_at: now }).where('id', '=', id).execute()
  }

  async revoke (id: string, userId: string): Promise<boolean> {
    const result = await this.db.deleteFrom('auth_kit_trusted_device').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst()
    return affected(result) === 1
  }

  async revokeAllOf (userId: string): Promise<number> {
    return affected(await this.db.deleteFrom('auth_kit_trusted_device').where('user_id', '=', userId).executeTakeFirst())
  }

  async purgeExpired (userId: string, now: number): Promise<void> {
    await this.db.deleteFrom('auth_kit_trusted_device').where('user_id', '=', userId).where('expires_at', '<=', now).execute()
  }
}

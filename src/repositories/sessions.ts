import type { Kysely, Selectable } from 'kysely'
import type { Database, SessionTable } from '../db/types.js'
import { affected, toBool, toNullableNumber, toNumber } from './normalize.js'

/** One refresh-token chain; access tokens name it in `sid`. */
export interface SessionRow {
  id: string
  userId: string
  amr: string[]
  /** Milliseconds: when the second factor (or the password of a one-step login) was last checked. */
  authTime: number
  /** A setup-only session (SPEC section 9): enrolment routes only, no refresh token. */
  setupOnly: boolean
  /** The trusted device this session started from or was remembered in. */
  deviceId: string | null
  createdAt: number
  lastUsedAt: number
  expiresAt: number
  revokedAt: number | null
}

function toSession (row: Selectable<SessionTable>): SessionRow {
  return {
    id: row.id,
    userId: row.user_id,
    amr: row.amr.split(' ').filter(Boolean),
    authTime: toNumber(row.auth_time),
    setupOnly: toBool(row.setup_only),
    deviceId: row.device_id,
    createdAt: toNumber(row.created_at),
    lastUsedAt: toNumber(row.last_used_at),
    expiresAt: toNumber(row.expires_at),
    revokedAt: toNullableNumber(row.revoked_at),
  }
}

export class SessionRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async insert (row: Omit<SessionRow, 'revokedAt'>): Promise<void> {
    await this.db.insertInto('auth_kit_session').values({
      id: row.id, user_id: row.userId, amr: row.amr.join(' '), auth_time: row.authTime, setup_only: row.setupOnly ? 1 : 0, device_id: row.deviceId,
      created_at: row.createdAt, last_used_at: row.lastUsedAt, expires_at: row.expiresAt, revoked_at: null,
    }).execute()
  }

  /** The primary-key lookup `authenticate` makes once per request. */
  async find (id: string): Promise<SessionRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_session').selectAll().where('id', '=', id).executeTakeFirst()
    return row === undefined ? undefined : toSession(row)
  }

  /** The user's sessions that still work, newest first. */
  async listLive (userId: string, now: number): Promise<SessionRow[]> {
    const rows = await this.db.selectFrom('auth_kit_session').selectAll()
      .where('user_id', '=', userId).where('revoked_at', 'is', null).where('expires_at', '>', now)
      .orderBy('created_at', 'desc').orderBy('id', 'desc').execute()
    return rows.map(toSession)
  }

  /** A rotation: the chain was used now and lives on to `expiresAt`. */
  async touch (id: string, now: number, expiresAt: number): Promise<void> {
    await this.db.updateTable('auth_kit_session').set({ last_used_at: now, expires_at: expiresAt }).where('id', '=', id).execute()
  }

  /** Step-up: the session's later tokens carry the second factor checked now. */
  async raise (id: string, amr: string[], authTime: number): Promise<void> {
    await this.db.updateTable('auth_kit_session').set({ amr: amr.join(' '), auth_time: authTime }).where('id', '=', id).execute()
  }

  /** True when this call ended a live session. */
  async revoke (id: string, userId: string, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_session').set({ revoked_at: now })
      .where('id', '=', id).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst()
    return affected(result) === 1
  }

  /** Ends every live session of the user but `keep`; the ids it ended. */
  async revokeAllOf (userId: string, now: number, keep?: string): Promise<string[]> {
    let query = this.db.selectFrom('auth_kit_session').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null)
    if (keep !== undefined) query = query.where('id', '!=', keep)
    const ids = (await query.execute()).map((r) => r.id)
    if (ids.length > 0) await this.db.updateTable('auth_kit_session').set({ revoked_at: now }).where('id', 'in', ids).where('revoked_at', 'is', null).execute()
    return ids
  }

  /** Ends every live session of the user whose `amr` lacks `mfa`, but `keep`; the ids ended. */
  async revokeWithoutMfa (userId: string, now: number, keep: string): Promise<string[]> {
    const rows = await this.db.selectFrom('auth_kit_session').select(['id', 'amr']).where('user_id', '=', userId).where('revoked_at', 'is', null).where('id', '!=', keep).execute()
    const ids = rows.filter((r) => !r.amr.split(' ').includes('mfa')).map((r) => r.id)
    if (ids.length > 0) await this.db.updateTable('auth_kit_session').set({ revoked_at: now }).where('id', 'in', ids).execute()
    return ids
  }

  /** Sessions that expired or were revoked long enough ago that no token of theirs can come back. */
  async purgeDead (userId: string, before: number): Promise<void> {
    await this.db.deleteFrom('auth_kit_session').where('user_id', '=', userId)
      .where((eb) => eb.or([eb('expires_at', '<=', before), eb('revoked_at', '<=', before)])).execute()
  }
}

import type { Kysely, Selectable } from 'kysely'
import type { Database, SessionTable } from '../db/types.js'
import { affected, toBool, toNullableNumber, toNumber } from './normalize.js'
import { prepare } from '../db/prepared.js'

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

export function toSession (row: Selectable<SessionTable>): SessionRow {
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

const insertRow = prepare((db, id: string, userId: string, amr: string, authTime: number, setupOnly: number, deviceId: string | null, createdAt: number, lastUsedAt: number, expiresAt: number) =>
  db.insertInto('auth_kit_session').values({
    id, user_id: userId, amr, auth_time: authTime, setup_only: setupOnly, device_id: deviceId,
    created_at: createdAt, last_used_at: lastUsedAt, expires_at: expiresAt, revoked_at: null,
  }))
const byId = prepare((db, id: string) => db.selectFrom('auth_kit_session').selectAll().where('id', '=', id))
const touchRow = prepare((db, id: string, now: number, expiresAt: number) => db.updateTable('auth_kit_session').set({ last_used_at: now, expires_at: expiresAt }).where('id', '=', id))
const purgeDeadOf = prepare((db, userId: string, before: number) => db.deleteFrom('auth_kit_session').where('user_id', '=', userId)
  .where((eb) => eb.or([eb('expires_at', '<=', before), eb('revoked_at', '<=', before)])))

const withUserById = prepare((db, id: string) => db.selectFrom('auth_kit_session as s')
  .leftJoin('auth_kit_user as u', 'u.id', 's.user_id')
  .selectAll('s')
  .select(['u.id as u_id', 'u.username as u_username', 'u.email as u_email', 'u.created_at as u_created_at'])
  .where('s.id', '=', id))

/** A built-in table's user as `request.user` carries it: the row without its password hash. */
export interface SessionUser {
  [key: string]: unknown
  id: string
  username: string
  email: string | null
  createdAt: number
}

export class SessionRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async insert (row: Omit<SessionRow, 'revokedAt'>): Promise<void> {
    await insertRow.run(this.db, row.id, row.userId, row.amr.join(' '), row.authTime, row.setupOnly ? 1 : 0, row.deviceId, row.createdAt, row.lastUsedAt, row.expiresAt)
  }

  /** The primary-key lookup `authenticate` makes once per request. */
  async find (id: string): Promise<SessionRow | undefined> {
    const row = await byId.first(this.db, id)
    return row === undefined ? undefined : toSession(row)
  }

  /**
   * The session and its user from the built-in user table in one read (the
   * user null when the table no longer has it); `authenticate`'s one query
   * with the built-in user store.
   */
  async findWithUser (id: string): Promise<{ session: SessionRow, user: SessionUser | null } | undefined> {
    const row = await withUserById.first(this.db, id)
    if (row === undefined) return undefined
    const { u_id: userId, u_username: username, u_email: email, u_created_at: createdAt, ...session } = row
    const user = userId === null || username === null ? null : { id: userId, username, email, createdAt: toNumber(createdAt) }
    return { session: toSession(session), user }
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
    await touchRow.run(this.db, id, now, expiresAt)
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
    await purgeDeadOf.run(this.db, userId, before)
  }
}

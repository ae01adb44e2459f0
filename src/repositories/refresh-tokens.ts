import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { toNullableNumber, toNumber } from './normalize.js'
import { prepare } from '../db/prepared.js'
import { toSession, type SessionRow } from './sessions.js'

export interface RefreshTokenRow {
  id: string
  familyId: string
  userId: string
  amr: string[]
  expiresAt: number
  revokedAt: number | null
}

const insertRow = prepare((db, id: string, familyId: string, userId: string, tokenHash: string, amr: string, expiresAt: number, createdAt: number) =>
  db.insertInto('auth_kit_refresh_token').values({
    id, family_id: familyId, user_id: userId, token_hash: tokenHash, amr, expires_at: expiresAt, revoked_at: null, created_at: createdAt,
  }))
const byHashes = prepare((db, hashes: string[]) => db.selectFrom('auth_kit_refresh_token').selectAll().where('token_hash', 'in', hashes))
const byHashesWithSession = prepare((db, hashes: string[]) => db.selectFrom('auth_kit_refresh_token as t')
  .leftJoin('auth_kit_session as s', 's.id', 't.family_id')
  .selectAll('t')
  .select(['s.id as s_id', 's.user_id as s_user_id', 's.amr as s_amr', 's.auth_time as s_auth_time', 's.setup_only as s_setup_only', 's.device_id as s_device_id',
    's.created_at as s_created_at', 's.last_used_at as s_last_used_at', 's.expires_at as s_expires_at', 's.revoked_at as s_revoked_at'])
  .where('t.token_hash', 'in', hashes))
const byHashesWithSessionAndUser = prepare((db, hashes: string[]) => db.selectFrom('auth_kit_refresh_token as t')
  .leftJoin('auth_kit_session as s', 's.id', 't.family_id')
  .leftJoin('auth_kit_user as u', 'u.id', 't.user_id')
  .selectAll('t')
  .select(['s.id as s_id', 's.user_id as s_user_id', 's.amr as s_amr', 's.auth_time as s_auth_time', 's.setup_only as s_setup_only', 's.device_id as s_device_id',
    's.created_at as s_created_at', 's.last_used_at as s_last_used_at', 's.expires_at as s_expires_at', 's.revoked_at as s_revoked_at', 'u.id as u_id'])
  .where('t.token_hash', 'in', hashes))
const revokeRow = prepare((db, id: string, now: number) => db.updateTable('auth_kit_refresh_token').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null))
const purgeExpiredOf = prepare((db, userId: string, now: number) => db.deleteFrom('auth_kit_refresh_token').where('user_id', '=', userId).where('expires_at', '<=', now))

export class RefreshTokenRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async insert (row: { id: string, familyId: string, userId: string, tokenHash: string, amr: string[], expiresAt: number, createdAt: number }): Promise<void> {
    await insertRow.run(this.db, row.id, row.familyId, row.userId, row.tokenHash, row.amr.join(' '), row.expiresAt, row.createdAt)
  }

  async findByHashes (hashes: string[]): Promise<RefreshTokenRow | undefined> {
    const row = await byHashes.first(this.db, hashes)
    if (row === undefined) return undefined
    return {
      id: row.id, familyId: row.family_id, userId: row.user_id, amr: row.amr.split(' ').filter(Boolean),
      expiresAt: toNumber(row.expires_at), revokedAt: toNullableNumber(row.revoked_at),
    }
  }

  /**
   * `findByHashes` and, in the same read, the session (chain) the token
   * belongs to: a rotation's one read. With `withBuiltInUser`, also whether
   * the built-in user table still has the token's user (`userExists`;
   * undefined without it).
   */
  async findByHashesWithSession (hashes: string[], withBuiltInUser = false): Promise<{ token: RefreshTokenRow, session: SessionRow | undefined, userExists?: boolean } | undefined> {
    const row: (Awaited<ReturnType<typeof byHashesWithSession.first>> & { u_id?: string | null }) | undefined =
      withBuiltInUser ? await byHashesWithSessionAndUser.first(this.db, hashes) : await byHashesWithSession.first(this.db, hashes)
    if (row === undefined) return undefined
    const token: RefreshTokenRow = {
      id: row.id, familyId: row.family_id, userId: row.user_id, amr: row.amr.split(' ').filter(Boolean),
      expiresAt: toNumber(row.expires_at), revokedAt: toNullableNumber(row.revoked_at),
    }
    const session = row.s_id === null ? undefined : toSession({
      id: row.s_id, user_id: row.s_user_id!, amr: row.s_amr!, auth_time: row.s_auth_time!, setup_only: row.s_setup_only!, device_id: row.s_device_id,
      created_at: row.s_created_at!, last_used_at: row.s_last_used_at!, expires_at: row.s_expires_at!, revoked_at: row.s_revoked_at,
    })
    return withBuiltInUser ? { token, session, userExists: row.u_id !== null && row.u_id !== undefined } : { token, session }
  }

  /** True for exactly one caller: rotation and logout each spend a token once. */
  async revoke (id: string, now: number): Promise<boolean> {
    return (await revokeRow.run(this.db, id, now)) === 1
  }

  /**
   * Every live token of one chain of `userId`'s; a chain of another user's is
   * left alone (its id comes from the caller, and an id is no secret).
   */
  async revokeFamilyOf (userId: string, familyId: string, now: number): Promise<void> {
    await this.db.updateTable('auth_kit_refresh_token').set({ revoked_at: now })
      .where('family_id', '=', familyId).where('user_id', '=', userId).where('revoked_at', 'is', null).execute()
  }

  /** Every live token of these chains, in one statement (not one per session). */
  async revokeFamilies (familyIds: string[], now: number): Promise<void> {
    if (familyIds.length === 0) return
    await this.db.updateTable('auth_kit_refresh_token').set({ revoked_at: now })
      .where('family_id', 'in', familyIds).where('revoked_at', 'is', null).execute()
  }

  /** The user's expired tokens: no longer needed to detect reuse. */
  async purgeExpired (userId: string, now: number): Promise<void> {
    await purgeExpiredOf.run(this.db, userId, now)
  }
}

import { randomInt, randomUUID } from 'node:crypto'
import { createSigner, createVerifier } from 'fast-jwt'
import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { type Keyring, type KeySet, randomToken, newId } from '../crypto.js'
import { RefreshTokenRepository } from '../repositories/refresh-tokens.js'
import { SessionRepository, type SessionRow, type SessionUser } from '../repositories/sessions.js'
import { AuthKitErrors } from '../errors.js'
import type { Repositories } from '../repositories/index.js'
import type { ResolvedOptions } from '../options.js'
import type { TokenPair } from '../../schemas/common.js'

/** `amr` values (RFC 8176): the password, and a second factor. */
export const AMR_PASSWORD = 'pwd'
export const AMR_MFA = 'mfa'
export const AMR_ONE_STEP = [AMR_PASSWORD]
export const AMR_TWO_STEP = [AMR_PASSWORD, AMR_MFA]

/** A new session's tokens, as the routes answer them. */
export type IssuedTokens = TokenPair
/** An access token alone: a setup-only session, a step-up. */
export type AccessToken = Pick<TokenPair, 'access' | 'access_expiration'>

/** The claims `authenticate` trusts, once the signature and expiry are checked. */
export interface AccessClaims {
  sub: string
  sid: string
  amr: string[]
  /** Seconds since the epoch (OpenID Connect `auth_time`). */
  authTime: number
}

export type TokenSettings = ResolvedOptions['tokens']

const TOKEN_USE = 'auth_kit_access'
/** On average one rotation in this many also deletes the user's expired refresh tokens. */
const PURGE_EVERY = 16

/**
 * The JOSE header of a compact JWS (RFC 7515 section 7.1), or null: only to
 * pick the key by `kid`; the verifier then checks the whole token. Decoding
 * the payload here as well would do the verifier's work twice.
 */
function joseHeader (token: string): { kid?: unknown, alg?: unknown } | null {
  const dot = token.indexOf('.')
  if (dot <= 0) return null
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'))
    return typeof header === 'object' && header !== null ? header : null
  } catch {
    return null
  }
}

/**
 * Sessions and their tokens. A session is one refresh-token chain; access
 * tokens are HS256 JWTs under a key derived from `secret` (a host's own
 * @fastify/jwt, with its own key, neither accepts nor is confused by them)
 * naming it in `sid`, so revoking a session ends its access tokens at once.
 * Refresh tokens are opaque random strings stored only as keyed hashes,
 * rotated on every use; a spent one shown again past the grace revokes its
 * session (RFC 9700 section 4.14.2).
 */
export class TokenService {
  private readonly refreshTokens: RefreshTokenRepository
  readonly sessions: SessionRepository

  /**
   * `builtInUsers`: the user store is the built-in table, so a rotation reads
   * the token's user with the token (rule 12) instead of asking the store.
   */
  constructor (private readonly props: { db: Kysely<Database>, repositories: Pick<Repositories, 'sessions' | 'refreshTokens'>, keyring: Keyring, settings: TokenSettings, builtInUsers?: boolean, now: () => number }) {
    this.refreshTokens = props.repositories.refreshTokens
    this.sessions = props.repositories.sessions
    const key = props.keyring.current
    this.signer = createSigner({ key: key.jwt, algorithm: 'HS256', kid: key.id })
  }

  private get now (): number { return this.props.now() }

  /** Made once: signing always uses the newest key. */
  private readonly signer: (payload: Record<string, unknown>) => string
  private readonly verifiers = new Map<string, (token: string) => unknown>()

  /**
   * One verifier per key, made on first use; it answers the header with the
   * claims. Expiry is checked against the plugin's clock, not here.
   */
  private verifierFor (key: KeySet): (token: string) => unknown {
    let verify = this.verifiers.get(key.id)
    if (verify === undefined) {
      verify = createVerifier({ key: key.jwt, algorithms: ['HS256'], ignoreExpiration: true, ignoreNotBefore: true, complete: true })
      this.verifiers.set(key.id, verify)
    }
    return verify
  }

  /**
   * Housekeeping, so the tables stay small without a job: the user's sessions
   * that ended long enough ago that no token of theirs can come back, and the
   * user's expired refresh tokens. Login step 1 runs it (every new session
   * starts from one), outside the second step's transaction, which it would
   * only lengthen; a rotation clears expired tokens itself.
   */
  async purgeDead (userId: string): Promise<void> {
    const now = this.now
    await this.sessions.purgeDead(userId, now - this.props.settings.refreshTokenExpiry * 1000)
    await this.refreshTokens.purgeExpired(userId, now)
  }

  /**
   * A new session and its tokens. `authTime` is milliseconds. `db` may be a
   * transaction, so a login's last step and its session commit together.
   */
  async startSession (input: { userId: string, amr: string[], authTime: number, deviceId?: string }, db: Kysely<Database> = this.props.db): Promise<IssuedTokens & { sid: string }> {
    const now = this.now
    const { refreshTokenExpiry } = this.props.settings
    const session: SessionRow = {
      id: newId(), userId: input.userId, amr: input.amr, authTime: input.authTime, setupOnly: false, deviceId: input.deviceId ?? null,
      createdAt: now, lastUsedAt: now, expiresAt: now + refreshTokenExpiry * 1000, revokedAt: null,
    }
    await new SessionRepository(db).insert(session)
    const refresh = await this.newRefreshToken(session, db)
    return { ...this.accessFor(session), ...refresh, sid: session.id }
  }

  /** A setup-only session (SPEC section 9): an access token for the enrolment routes, no refresh token. */
  async startSetupSession (userId: string): Promise<AccessToken & { sid: string }> {
    const now = this.now
    const session: SessionRow = {
      id: newId(), userId, amr: AMR_ONE_STEP, authTime: now, setupOnly: true, deviceId: null,
      createdAt: now, lastUsedAt: now, expiresAt: now + this.props.settings.accessTokenExpiry * 1000, revokedAt: null,
    }
    await this.sessions.insert(session)
    return { ...this.accessFor(session), sid: session.id }
  }

  /** An access token of `session`, carrying its `amr` and `auth_time`. */
  accessFor (session: Pick<SessionRow, 'id' | 'userId' | 'amr' | 'authTime'>): AccessToken {
    const now = this.now
    const { accessTokenExpiry } = this.props.settings
    const iat = Math.floor(now / 1000)
    // iat and exp follow the plugin's clock (the `now` option), so they are set here, not by the signer.
    const access = this.signer({
      sub: session.userId, sid: session.id, amr: session.amr, auth_time: Math.floor(session.authTime / 1000), token_use: TOKEN_USE, jti: randomUUID(),
      iat, exp: iat + accessTokenExpiry,
    })
    return { access, access_expiration: new Date((iat + accessTokenExpiry) * 1000).toISOString() }
  }

  private async newRefreshToken (session: SessionRow, db: Kysely<Database>): Promise<Pick<IssuedTokens, 'refresh' | 'refresh_expiration'>> {
    const now = this.now
    const refresh = randomToken(32)
    const expiresAt = now + this.props.settings.refreshTokenExpiry * 1000
    const tokens = new RefreshTokenRepository(db)
    await tokens.insert({ id: newId(), familyId: session.id, userId: session.userId, tokenHash: this.props.keyring.hash(refresh), amr: session.amr, expiresAt, createdAt: now })
    return { refresh, refresh_expiration: new Date(expiresAt).toISOString() }
  }

  /** The claims of a validly signed, unexpired access token, or null. Ephemeral tokens are not JWTs and never pass. */
  verifyAccess (token: string): AccessClaims | null {
    try {
      // With one key there is one verifier to ask; with several, the header's kid picks it.
      const { keys } = this.props.keyring
      let key: KeySet | undefined = keys[0]
      if (keys.length > 1) {
        const kid = joseHeader(token)?.kid
        key = typeof kid === 'string' ? this.props.keyring.byId(kid) : undefined
      }
      if (key === undefined) return null
      const { header, payload: claims } = this.verifierFor(key)(token) as { header: { kid?: unknown, alg?: unknown }, payload: Record<string, unknown> }
      if (header.kid !== key.id || header.alg !== 'HS256') return null
      if (claims.token_use !== TOKEN_USE || typeof claims.sub !== 'string' || typeof claims.sid !== 'string' || typeof claims.exp !== 'number') return null
      if (claims.exp * 1000 <= this.now) return null
      const amr = Array.isArray(claims.amr) ? claims.amr.filter((x): x is string => typeof x === 'string') : []
      const authTime = typeof claims.auth_time === 'number' ? claims.auth_time : 0
      return { sub: claims.sub, sid: claims.sid, amr, authTime }
    } catch {
      return null
    }
  }

  /** The live session an access token names, or null (revoked, expired, another user's). */
  async liveSession (claims: AccessClaims): Promise<SessionRow | null> {
    return this.live(claims, await this.sessions.find(claims.sid))
  }

  /**
   * `liveSession` and, in the same read, the session's user from the built-in
   * user table (without its password hash), or null when the table no longer
   * has it. Only for the built-in user store.
   */
  async liveSessionWithUser (claims: AccessClaims): Promise<{ session: SessionRow | null, user: SessionUser | null }> {
    const found = await this.sessions.findWithUser(claims.sid)
    return { session: this.live(claims, found?.session), user: found?.user ?? null }
  }

  private live (claims: AccessClaims, session: SessionRow | undefined): SessionRow | null {
    if (session === undefined || session.userId !== claims.sub || session.revokedAt !== null || session.expiresAt <= this.now) return null
    return session
  }

  /**
   * Rotation: the presented token is spent, a new pair of the same session is
   * issued, in one transaction (a crash keeps the old token or the new one).
   * 401 `AUTH_KIT_INVALID_REFRESH_TOKEN` for an unknown, expired or revoked
   * token, and when the token's user is gone (rule 12: not in the built-in
   * table, or `users.exists` says false for a host store), which also ends the
   * session for good after `users.gone` has run.
   */
  async refresh (token: string, users: { exists: (userId: string) => Promise<boolean>, gone: (userId: string) => Promise<void> }): Promise<IssuedTokens & { userId: string }> {
    const builtIn = this.props.builtInUsers === true
    const found = await this.refreshTokens.findByHashesWithSession(this.props.keyring.hashes(token), builtIn)
    const now = this.now
    if (found === undefined) throw new AuthKitErrors.InvalidRefreshToken()
    const { token: row, session } = found
    const live = session !== undefined && session.revokedAt === null && session.expiresAt > now
    if (row.revokedAt !== null) {
      // A spent token came back. Within the grace it is a second tab that
      // refreshed at the same moment; later, someone holds a copy: end the chain.
      if (live && now - row.revokedAt > this.props.settings.refreshReuseGrace * 1000) await this.endSession(row.userId, row.familyId)
      throw new AuthKitErrors.InvalidRefreshToken()
    }
    if (!live || row.expiresAt <= now) throw new AuthKitErrors.InvalidRefreshToken()
    if (!(builtIn ? found.userExists === true : await users.exists(row.userId))) {
      await users.gone(row.userId)
      await this.endSession(row.userId, row.familyId)
      throw new AuthKitErrors.InvalidRefreshToken()
    }
    // Spent tokens stay until they expire (a copy shown later must still be
    // recognised); one rotation in PURGE_EVERY clears the user's expired ones,
    // so a chain refreshed for months between logins stays small, without
    // a DELETE on every rotation.
    const purge = randomInt(PURGE_EVERY) === 0
    const issued = await this.props.db.transaction().execute(async (trx) => {
      if (!(await new RefreshTokenRepository(trx).revoke(row.id, now))) return null
      await new SessionRepository(trx).touch(session.id, now, now + this.props.settings.refreshTokenExpiry * 1000)
      if (purge) await new RefreshTokenRepository(trx).purgeExpired(row.userId, now)
      return this.newRefreshToken(session, trx)
    })
    // Lost the race to a parallel refresh of the same token: refused, nothing revoked.
    if (issued === null) throw new AuthKitErrors.InvalidRefreshToken()
    return { ...this.accessFor(session), ...issued, userId: row.userId }
  }

  /** Ends the session of `token` if it is the caller's; anything else changes nothing. */
  async logout (userId: string, token: string): Promise<void> {
    const row = await this.refreshTokens.findByHashes(this.props.keyring.hashes(token))
    if (row === undefined || row.userId !== userId) return
    await this.endSession(userId, row.familyId)
  }

  /**
   * Ends one session of the user: its refresh tokens and access tokens stop
   * working. True if it was live. A session of another user's changes nothing.
   */
  async endSession (userId: string, sid: string): Promise<boolean> {
    const now = this.now
    const ended = await this.sessions.revoke(sid, userId, now)
    await this.refreshTokens.revokeFamilyOf(userId, sid, now)
    return ended
  }

  /** Ends every session of the user but `keep`; the ids ended. */
  async endSessionsOf (userId: string, keep?: string): Promise<string[]> {
    const now = this.now
    const ids = await this.sessions.revokeAllOf(userId, now, keep)
    await this.refreshTokens.revokeFamilies(ids, now)
    return ids
  }
}

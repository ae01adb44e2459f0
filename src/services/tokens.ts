import { randomUUID } from 'node:crypto'
import { createSigner, createVerifier, createDecoder } from 'fast-jwt'
import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { type Keyring, randomToken } from '../crypto.js'
import { RefreshTokenRepository } from '../repositories/refresh-tokens.js'
import { AuthKitErrors } from '../errors.js'

export interface IssuedTokens {
  access: string
  refresh: string
  access_expiration: string
  refresh_expiration: string
}

export interface AccessClaims {
  sub: string
  amr: string[]
}

const TOKEN_USE = 'auth_kit_access'
const decode = createDecoder({ complete: true })

/**
 * Access tokens are HS256 JWTs under a key derived from `secret` (so a host's
 * own @fastify/jwt, with its own key, neither accepts nor is confused by them).
 * Refresh tokens are opaque random strings stored only as keyed hashes, rotated
 * on every use; presenting a spent one revokes its whole family.
 */
export class TokenService {
  private readonly refreshTokens: RefreshTokenRepository
  constructor (
    db: Kysely<Database>,
    private readonly keyring: Keyring,
    private readonly expiry: { accessTokenExpiry: number, refreshTokenExpiry: number },
    private readonly now: () => number,
  ) {
    this.refreshTokens = new RefreshTokenRepository(db)
  }

  async issue (userId: string, amr: string[], familyId: string = randomUUID()): Promise<IssuedTokens> {
    const now = this.now()
    const accessExp = Math.floor(now / 1000) + this.expiry.accessTokenExpiry
    const key = this.keyring.current
    // iat and exp follow the plugin's clock (the `now` option).
    const sign = createSigner({ key: key.jwt, algorithm: 'HS256', kid: key.id, clockTimestamp: now, expiresIn: this.expiry.accessTokenExpiry * 1000 })
    const access = sign({ sub: userId, amr, token_use: TOKEN_USE, jti: randomUUID() })
    const refresh = randomToken(32)
    const refreshExpiresAt = now + this.expiry.refreshTokenExpiry * 1000
    await this.refreshTokens.purgeExpired(userId, now)
    await this.refreshTokens.insert({
      id: randomUUID(), familyId, userId, tokenHash: this.keyring.hash(refresh), amr, expiresAt: refreshExpiresAt, createdAt: now,
    })
    return {
      access,
      refresh,
      access_expiration: new Date(accessExp * 1000).toISOString(),
      refresh_expiration: new Date(refreshExpiresAt).toISOString(),
    }
  }

  /** The claims of a valid access token, or null. Ephemeral tokens are not JWTs and never pass. */
  verifyAccess (token: string): AccessClaims | null {
    try {
      const { header } = decode(token) as { header: { kid?: string, alg?: string } }
      const key = typeof header.kid === 'string' ? this.keyring.byId(header.kid) : undefined
      if (key === undefined || header.alg !== 'HS256') return null
      const verify = createVerifier({ key: key.jwt, algorithms: ['HS256'], ignoreExpiration: true, ignoreNotBefore: true })
      const claims = verify(token) as Record<string, unknown>
      if (claims.token_use !== TOKEN_USE || typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return null
      if (claims.exp * 1000 <= this.now()) return null
      const amr = Array.isArray(claims.amr) ? claims.amr.filter((x): x is string => typeof x === 'string') : []
      return { sub: claims.sub, amr }
    } catch {
      return null
    }
  }

  /** Rotation: the presented token is spent, a new pair is issued. */
  async refresh (token: string): Promise<IssuedTokens & { userId: string }> {
    const row = await this.refreshTokens.findByHashes(this.keyring.hashes(token))
    const now = this.now()
    if (row === undefined) throw new AuthKitErrors.InvalidRefreshToken()
    if (row.revokedAt !== null) {
      // A spent token came back: someone holds a copy. End the whole chain.
      await this.refreshTokens.revokeFamily(row.familyId, now)
      throw new AuthKitErrors.InvalidRefreshToken()
    }
    if (row.expiresAt <= now || !(await this.refreshTokens.revoke(row.id, now))) throw new AuthKitErrors.InvalidRefreshToken()
    return { ...(await this.issue(row.userId, row.amr, row.familyId)), userId: row.userId }
  }

  /** Revokes the token if it is the caller's; anything else changes nothing. */
  async logout (userId: string, token: string): Promise<void> {
    const row = await this.refreshTokens.findByHashes(this.keyring.hashes(token))
    if (row === undefined || row.userId !== userId) return
    await this.refreshTokens.revokeFamily(row.familyId, this.now())
  }
}

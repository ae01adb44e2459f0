import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { inUserLock } from '../db/user-lock.js'
import { TrustedDeviceRepository } from '../repositories/devices.js'
import { MethodRepository } from '../repositories/methods.js'
import { UserLockRepository } from '../repositories/user-locks.js'
import type { Repositories } from '../repositories/index.js'
import type { SessionRow } from '../repositories/sessions.js'
import type { MethodService } from './methods.js'
import type { MethodSummary } from '../../schemas/methods.js'
import type { Device, Session } from '../../schemas/login.js'
import { AMR_TWO_STEP, type TokenService } from './tokens.js'
import type { TokenPair } from '../../schemas/common.js'
import type { EventBus, RequestContext } from './events.js'

const iso = (ms: number): string => new Date(ms).toISOString()
/** An admin call is made outside any request. */
const ADMIN: RequestContext = { ip: null }

/**
 * What a user (through the routes) and the host's support staff (through
 * `app.authKit.admin`) can see and end: sessions, trusted devices, factors
 * and locks (SPEC section 9).
 */
export class AccountService {
  private readonly devices: TrustedDeviceRepository

  constructor (private readonly props: {
    db: Kysely<Database>
    repositories: Pick<Repositories, 'sessions' | 'devices' | 'loginAttempts'>
    tokens: TokenService
    methods: MethodService
    events: EventBus
    now: () => number
  }) {
    this.devices = props.repositories.devices
  }

  async listSessions (userId: string, current: SessionRow): Promise<Session[]> {
    const sessions = await this.props.repositories.sessions.listLive(userId, this.props.now())
    return sessions.filter((s) => !s.setupOnly).map((s) => ({
      id: s.id, created_at: iso(s.createdAt), last_used_at: iso(s.lastUsedAt), expires_at: iso(s.expiresAt), amr: s.amr, current: s.id === current.id,
    }))
  }

  /** Ends one of the user's sessions; another user's id changes nothing. */
  async revokeSession (ctx: RequestContext, userId: string, id: string): Promise<void> {
    if (await this.props.tokens.endSession(userId, id)) this.props.events.emit('session_revoked', ctx, userId)
  }

  /** Ends every session but `current`, and forgets every remembered device. */
  async revokeOtherSessions (ctx: RequestContext, userId: string, current: SessionRow): Promise<void> {
    const ended = await this.props.tokens.endSessionsOf(userId, current.id)
    const forgotten = await this.devices.revokeAllOf(userId)
    if (ended.length > 0) this.props.events.emit('session_revoked', ctx, userId)
    if (forgotten > 0) this.props.events.emit('device_revoked', ctx, userId)
  }

  async listDevices (userId: string, current: SessionRow): Promise<Device[]> {
    const devices = await this.devices.listLive(userId, this.props.now())
    return devices.map((d) => ({
      id: d.id, label: d.label, created_at: iso(d.createdAt), last_used_at: iso(d.lastUsedAt), expires_at: iso(d.expiresAt), current: d.id === current.deviceId,
    }))
  }

  /** Forgets one of the user's devices; another user's id changes nothing. */
  async revokeDevice (ctx: RequestContext, userId: string, id: string): Promise<void> {
    if (await this.devices.revoke(id, userId)) this.props.events.emit('device_revoked', ctx, userId)
  }

  /**
   * Enrolment finished with a setup-only token (SPEC section 9): that setup
   * session ends and a full one begins, its second factor checked now.
   */
  async finishEnrolment (ctx: RequestContext, userId: string, setupSessionId: string): Promise<TokenPair> {
    await this.props.tokens.endSession(userId, setupSessionId)
    const { sid: _sid, ...issued } = await this.props.tokens.startSession({ userId, amr: AMR_TWO_STEP, authTime: this.props.now() })
    this.props.events.emit('login_succeeded', ctx, userId)
    return issued
  }

  // --- app.authKit.admin ------------------------------------------------------

  /** What `GET /mfa/` would answer for the user. */
  async listMethods (userId: string): Promise<MethodSummary[]> {
    return this.props.methods.list({ id: userId })
  }

  /**
   * Deletes every method, backup code and trusted device of the user and ends
   * every session: the next login is one step (or setup, under `mfa.required`).
   */
  async resetMfa (userId: string): Promise<void> {
    await inUserLock(this.props.db, userId, async ({ trx }) => {
      const methods = new MethodRepository(trx)
      for (const row of await methods.listByUser(userId)) await this.props.methods.removeMethod(trx, userId, row)
      await new TrustedDeviceRepository(trx).revokeAllOf(userId)
    })
    await this.props.tokens.endSessionsOf(userId)
    this.props.events.emit('mfa_reset', ADMIN, userId)
  }

  /** Ends the user's lock and clears the wrong-code count and its doubling. */
  async unlock (userId: string): Promise<void> {
    await inUserLock(this.props.db, userId, async ({ trx }) => {
      await new UserLockRepository(trx).save(userId, { failures: 0, lockCount: 0, lockedUntil: 0 })
    })
    this.props.events.emit('user_unlocked', ADMIN, userId)
  }

  /**
   * Ends every session of the user and forgets their remembered devices:
   * refresh tokens, access tokens and device tokens stop working at once.
   * Call it when the host deletes or disables a user.
   */
  async revokeSessions (userId: string): Promise<void> {
    await this.props.tokens.endSessionsOf(userId)
    await this.devices.revokeAllOf(userId)
    this.props.events.emit('session_revoked', ADMIN, userId)
  }

  /**
   * Rule 12: the user store no longer returns this user. Every session,
   * remembered device and login attempt of theirs ends for good, so nothing
   * comes back if the store returns the user again.
   */
  async forgetGoneUser (userId: string): Promise<void> {
    await this.props.tokens.endSessionsOf(userId)
    await this.devices.revokeAllOf(userId)
    await this.props.repositories.loginAttempts.killAllOf(userId, this.props.now())
  }
}

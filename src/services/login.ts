import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { inUserLock } from '../db/user-lock.js'
import { type Keyring, randomToken, slowVerify, newId } from '../crypto.js'
import { LoginAttemptRepository, type LoginAttemptRow } from '../repositories/login-attempts.js'
import { TrustedDeviceRepository, type TrustedDeviceRow } from '../repositories/devices.js'
import { SessionRepository } from '../repositories/sessions.js'
import type { HandlerRegistry } from '../handlers/registry.js'
import type { Dispatch, FactorResponse } from '../handlers/base.js'
import type { LoginThrottleService } from './login-throttle.js'
import type { MethodService } from './methods.js'
import { AMR_ONE_STEP, AMR_TWO_STEP, type IssuedTokens, type TokenService } from './tokens.js'
import type { EventBus, RequestContext } from './events.js'
import { type AuthKitUser, type UserStore, dummyPasswordHash, publicUser, withoutPasswordHash } from '../users.js'
import { AuthKitErrors } from '../errors.js'
import type { Repositories } from '../repositories/index.js'
import type { ResolvedOptions } from '../options.js'
import type { PublicUser } from '../../schemas/common.js'
import type { ChangeMethodAnswer, LoginAnswer, ResendAnswer, StepUpAnswer, VerifyAnswer } from '../../schemas/login.js'

export type LoginSettings = Pick<ResolvedOptions['mfa'], 'ephemeralTokenExpiry' | 'maxAttemptsPerToken' | 'required' | 'trustedDeviceDays'>


export interface LoginServiceProps {
  db: Kysely<Database>
  repositories: Pick<Repositories, 'loginAttempts' | 'devices'>
  keyring: Keyring
  users: UserStore<any>
  registry: HandlerRegistry
  methods: MethodService
  tokens: TokenService
  throttle: LoginThrottleService
  events: EventBus
  settings: LoginSettings
  /** True when `users` is the built-in store: its user is then read with the attempt, in one query. */
  builtInUsers: boolean
  /** Called when a user the store no longer returns is met (rule 12). */
  onUserGone: (userId: string) => Promise<void>
  now: () => number
}

/** The `challenge` a dispatch adds to an answer (SPEC section 10), or nothing. */
function challengeOf (dispatched: Dispatch): { challenge?: unknown } {
  return dispatched.challenge === undefined ? {} : { challenge: dispatched.challenge }
}

/** Longest device label kept, in characters. */
const DEVICE_LABEL_MAX = 100

/** "Browser on System" from a User-Agent header, at most 100 characters. */
export function deviceLabel (userAgent: string | undefined): string {
  const ua = typeof userAgent === 'string' ? userAgent : ''
  const browser = /Edg\//.test(ua) ? 'Edge' : /OPR\//.test(ua) ? 'Opera' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : /^curl\//.test(ua) ? 'curl' : ''
  const system = /Android/.test(ua) ? 'Android' : /iPhone|iPad|iOS/.test(ua) ? 'iOS' : /Mac OS X|Macintosh/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /CrOS/.test(ua) ? 'ChromeOS' : /Linux/.test(ua) ? 'Linux' : ''
  const label = browser !== '' && system !== '' ? `${browser} on ${system}` : browser !== '' ? browser : system !== '' ? system : ua.replace(/[\u0000-\u001f\u007f]/g, '').trim()
  return (label === '' ? 'Unknown device' : label).slice(0, DEVICE_LABEL_MAX)
}

/**
 * The two-step login (rule 2): attempts live server-side, hashed, single use;
 * step 2 runs in the user's locked transaction, so its code, the attempt and
 * the new session commit together.
 */
export class LoginService {
  private readonly attempts: LoginAttemptRepository
  private readonly devices: TrustedDeviceRepository

  constructor (private readonly props: LoginServiceProps) {
    this.attempts = props.repositories.loginAttempts
    this.devices = props.repositories.devices
  }

  private get now (): number { return this.props.now() }

  /** Tokens for a finished login, and the event that says so. */
  private async finish (ctx: RequestContext, user: AuthKitUser, tokens: IssuedTokens): Promise<IssuedTokens & { user: PublicUser }> {
    this.props.events.emit('login_succeeded', ctx, String(user.id))
    return { ...tokens, user: publicUser(this.props.users, user) }
  }

  /** One answer, in about one time, for an unknown user and a wrong password. */
  async checkPassword (ctx: RequestContext, login: string, password: string): Promise<AuthKitUser> {
    const { users, events, throttle } = this.props
    const user = await users.findByLogin(login)
    await throttle.reserve(ctx, login, user ?? null)
    if (user === null || user === undefined) {
      await slowVerify(password, await dummyPasswordHash())
      events.emit('login_failed', ctx, null)
      throw new AuthKitErrors.InvalidCredentials()
    }
    if (!(await users.verifyPassword(user, password))) {
      events.emit('login_failed', ctx, String(user.id))
      throw new AuthKitErrors.InvalidCredentials()
    }
    await throttle.passed(ctx, login, user)
    return user
  }

  /** `POST /login/`: the password, then whatever step 1 answers. */
  async login (ctx: RequestContext, login: string, password: string, deviceToken?: string): Promise<LoginAnswer> {
    const user = await this.checkPassword(ctx, login, password)
    return this.start(ctx, user, deviceToken)
  }

  /**
   * Step 1 for a user whose first factor is checked (by password, or by the
   * host's own way in through `app.authKit.startLogin`): a challenge, a
   * setup-only token, or tokens.
   */
  async start (ctx: RequestContext, user: AuthKitUser, deviceToken?: string): Promise<LoginAnswer> {
    const { settings, tokens, methods, keyring, events } = this.props
    user = withoutPasswordHash(user)
    const userId = String(user.id)
    await tokens.purgeDead(userId)
    const active = await methods.activeMethods(userId)
    if (active.length === 0) {
      if (await settings.required(withoutPasswordHash(user))) {
        const setup = await tokens.startSetupSession(userId)
        return { mfa_enabled: false, mfa_setup_required: true, access: setup.access, access_expiration: setup.access_expiration, user: publicUser(this.props.users, user) }
      }
      return { mfa_enabled: false, ...(await this.finish(ctx, user, await tokens.startSession({ userId, amr: AMR_ONE_STEP, authTime: this.now }))) }
    }
    const device = await this.trustedDevice(userId, deviceToken)
    if (device !== null) {
      await this.devices.touch(device.id, this.now)
      // The second factor was checked when the device was remembered: step-up still asks once maxAge has passed.
      return { mfa_enabled: false, ...(await this.finish(ctx, user, await tokens.startSession({ userId, amr: AMR_TWO_STEP, authTime: device.createdAt, deviceId: device.id }))) }
    }

    let primary = active.find((m) => m.isPrimary)
    if (primary === undefined) {
      await inUserLock(this.props.db, userId, async ({ trx }) => methods.settlePrimary(trx, userId))
      primary = (await methods.activeMethods(userId)).find((m) => m.isPrimary) ?? active[0]
    }
    const attemptId = newId()
    // A code is sent, or a challenge bound to this attempt made, before the attempt exists: a failed delivery leaves none.
    const dispatched = await methods.handlerFor(user, primary).dispatch({ kind: 'login', attemptId }, { strict: false })
    const token = randomToken(32)
    const now = this.now
    // Each new attempt clears the user's expired ones, so the table stays small without a job.
    await this.attempts.purgeExpired(userId, now)
    await this.attempts.insert({
      id: attemptId, tokenHash: keyring.hash(token), userId, method: primary.name,
      expiresAt: now + settings.ephemeralTokenExpiry * 1000, createdAt: now,
    })
    events.emit('mfa_challenge_started', ctx, userId, primary.name)
    return { mfa_enabled: true, ephemeral_token: token, method: primary.name, methods: active.map((m) => m.name), ...challengeOf(dispatched) }
  }

  /** The user's live remembered device for this token, or null (silently: no answer tells why). */
  private async trustedDevice (userId: string, deviceToken: string | undefined): Promise<TrustedDeviceRow | null> {
    if (deviceToken === undefined || deviceToken === '' || this.props.settings.trustedDeviceDays === 0) return null
    const device = await this.devices.findByHashes(this.props.keyring.hashes(`device:${deviceToken}`))
    if (device === undefined || device.userId !== userId || device.expiresAt <= this.now) return null
    return device
  }

  /** The attempt behind a token, if it can still be used, and its user; otherwise 401. */
  private async liveAttempt (token: string): Promise<{ attempt: LoginAttemptRow, user: AuthKitUser }> {
    const hashes = this.props.keyring.hashes(token)
    let attempt: LoginAttemptRow | undefined
    let user: AuthKitUser | null | undefined
    if (this.props.builtInUsers) {
      const found = await this.attempts.findByHashesWithUser(hashes)
      attempt = found?.attempt
      user = found?.user
    } else {
      attempt = await this.attempts.findByHashes(hashes)
    }
    if (attempt === undefined || !this.usable(attempt)) throw new AuthKitErrors.InvalidEphemeralToken()
    if (!this.props.builtInUsers) user = await this.props.users.findById(attempt.userId)
    // Rule 12: an attempt of a user the store no longer returns is dead.
    if (user === null || user === undefined) {
      await this.props.onUserGone(attempt.userId)
      throw new AuthKitErrors.InvalidEphemeralToken()
    }
    return { attempt, user: withoutPasswordHash(user) }
  }

  /** Rule 2 on a row already read; the attempt's writes test the same in SQL (repositories/login-attempts.ts `usable`). */
  private usable (attempt: LoginAttemptRow): boolean {
    return attempt.usedAt === null && attempt.expiresAt > this.now && attempt.failures < this.props.settings.maxAttemptsPerToken
  }

  /**
   * `POST /login/verify/`: a code (or credential) of the attempt's method, or
   * a backup code of any active method.
   */
  async verify (ctx: RequestContext & { userAgent?: string }, token: string, response: FactorResponse, rememberDevice = false): Promise<VerifyAnswer> {
    const { attempt, user } = await this.liveAttempt(token)
    const userId = attempt.userId
    const { methods, tokens, events } = this.props
    const methodName = attempt.method
    const { maxAttemptsPerToken } = this.props.settings
    const outcome = await inUserLock(this.props.db, userId, async (tx) => {
      const attempts = new LoginAttemptRepository(tx.trx)
      const active = methods.activeOf(tx.methods!)
      const method = active.find((m) => m.name === attempt.method)
      if (method === undefined) throw new AuthKitErrors.InvalidEphemeralToken()
      const verdict = await methods.checkFactor(tx, user, method, response, { backupMethods: active, scope: { kind: 'login', attemptId: attempt.id } })
      // The attempt is not read again under the lock: each write below changes
      // it only if it is still as usable as when read, and otherwise the whole
      // transaction (code, count, replay guard) rolls back with a 401.
      if (!verdict.right) {
        if (!(await attempts.fail(attempt.id, this.now, maxAttemptsPerToken))) throw new AuthKitErrors.InvalidEphemeralToken()
        return { verdict, active }
      }
      if (!(await attempts.markUsedIfUsable(attempt.id, this.now, maxAttemptsPerToken, method.name))) throw new AuthKitErrors.InvalidEphemeralToken()
      const device = rememberDevice ? await this.remember(tx.trx, userId, ctx.userAgent) : undefined
      const issued = await tokens.startSession({ userId, amr: AMR_TWO_STEP, authTime: this.now, deviceId: device?.id }, tx.trx)
      return { verdict, active, issued, device }
    }, { withMethods: true })
    const { verdict, active } = outcome
    if (verdict.lockedNow) events.emit('user_locked', ctx, userId, methodName)
    if (!verdict.right || outcome.issued === undefined) {
      events.emit('mfa_failed', ctx, userId, methodName)
      throw verdict.spentStep === true ? new AuthKitErrors.CodeAlreadyUsedLogin() : new AuthKitErrors.InvalidCodeLogin()
    }
    events.emit('mfa_verified', ctx, userId, methodName)
    if (verdict.backupOf !== null) events.emit('backup_code_used', ctx, userId, active.find((m) => m.id === verdict.backupOf)?.name ?? methodName)
    const { sid: _sid, ...issued } = outcome.issued
    const result: VerifyAnswer = await this.finish(ctx, user, issued)
    if (outcome.device !== undefined) {
      events.emit('device_remembered', ctx, userId)
      result.device_token = outcome.device.token
      result.device_expiration = new Date(outcome.device.expiresAt).toISOString()
    }
    return result
  }

  /** A device token (256 random bits, stored as a keyed hash) for the user; none while remembering is off. */
  private async remember (trx: Kysely<Database>, userId: string, userAgent: string | undefined): Promise<{ id: string, token: string, expiresAt: number } | undefined> {
    const days = this.props.settings.trustedDeviceDays
    if (days === 0) return undefined
    const now = this.now
    const token = randomToken(32)
    const devices = new TrustedDeviceRepository(trx)
    await devices.purgeExpired(userId, now)
    const expiresAt = now + days * 86_400_000
    const id = newId()
    await devices.insert({ id, userId, tokenHash: this.props.keyring.hash(`device:${token}`), label: deviceLabel(userAgent), createdAt: now, lastUsedAt: now, expiresAt })
    return { id, token, expiresAt }
  }

  /**
   * `POST /login/step-up/`: a code of `method` (default the primary) or a
   * backup code, checked as on every method route (same lockout, replay and
   * single use), raises session `sid` to `amr ["pwd", "mfa"]` with `auth_time`
   * now and answers a fresh access token of it. 404 with no such active
   * method, 403 `AUTH_KIT_INVALID_CODE` for a wrong code, 429 while locked.
   */
  async stepUp (ctx: RequestContext, user: AuthKitUser, sid: string, response: FactorResponse, methodName?: string): Promise<StepUpAnswer> {
    const userId = String(user.id)
    const { methods, tokens, events } = this.props
    const now = this.now
    const outcome = await inUserLock(this.props.db, userId, async (tx) => {
      const active = methods.activeOf(tx.methods!)
      const row = methodName === undefined ? active.find((m) => m.isPrimary) ?? active[0] : active.find((m) => m.name === methodName)
      if (row === undefined) throw new AuthKitErrors.MethodNotFound()
      const verdict = await methods.checkFactor(tx, user, row, response, { backupMethods: active })
      if (verdict.right) await new SessionRepository(tx.trx).raise(sid, AMR_TWO_STEP, now)
      return { verdict, row, active }
    }, { withMethods: true })
    const { verdict, row, active } = outcome
    if (verdict.lockedNow) events.emit('user_locked', ctx, userId, row.name)
    if (!verdict.right) {
      events.emit('mfa_failed', ctx, userId, row.name)
      throw verdict.spentStep === true ? new AuthKitErrors.CodeAlreadyUsed() : new AuthKitErrors.InvalidCode()
    }
    if (verdict.backupOf !== null) events.emit('backup_code_used', ctx, userId, active.find((m) => m.id === verdict.backupOf)?.name ?? row.name)
    events.emit('step_up_succeeded', ctx, userId, row.name)
    return tokens.accessFor({ id: sid, userId, amr: AMR_TWO_STEP, authTime: now })
  }

  async changeMethod (_ctx: RequestContext, token: string, newMethod: string): Promise<ChangeMethodAnswer> {
    const { attempt, user } = await this.liveAttempt(token)
    if (newMethod === attempt.method) throw new AuthKitErrors.SameMethod()
    const target = (await this.props.methods.activeMethods(attempt.userId)).find((m) => m.name === newMethod)
    if (target === undefined) throw new AuthKitErrors.MethodNotFound()
    const dispatched = await this.props.methods.handlerFor(user, target).dispatch({ kind: 'login', attemptId: attempt.id }, { strict: false })
    // A verify (or the last wrong code) may have spent the attempt since it was read: then it is not rebound, and the answer says so.
    if (!(await this.attempts.rebind(attempt.id, newMethod, this.now, this.props.settings.maxAttemptsPerToken))) throw new AuthKitErrors.InvalidEphemeralToken()
    // Within the resend cooldown nothing was sent: `detail` says the latest code still works.
    return { ephemeral_token: token, method: newMethod, ...(dispatched.detail === undefined ? {} : { detail: dispatched.detail }), ...challengeOf(dispatched) }
  }

  async resend (_ctx: RequestContext, token: string): Promise<ResendAnswer> {
    const { attempt, user } = await this.liveAttempt(token)
    if (!this.props.registry.requiresDispatch(attempt.method)) throw new AuthKitErrors.MethodNotDispatchable()
    const method = (await this.props.methods.activeMethods(attempt.userId)).find((m) => m.name === attempt.method)
    if (method === undefined) throw new AuthKitErrors.InvalidEphemeralToken()
    const dispatched = await this.props.methods.handlerFor(user, method).dispatch({ kind: 'login', attemptId: attempt.id }, { strict: true })
    // A verify that spent the attempt meanwhile (or a change of its method) leaves nothing to resend for.
    const current = await this.attempts.findById(attempt.id)
    if (current === undefined || !this.usable(current) || current.method !== attempt.method) throw new AuthKitErrors.InvalidEphemeralToken()
    return { ephemeral_token: token, detail: dispatched.detail ?? 'A new code has been sent.', ...challengeOf(dispatched) }
  }
}

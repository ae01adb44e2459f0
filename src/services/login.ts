import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { type Keyring, randomToken, slowVerify } from '../crypto.js'
import { LoginAttemptRepository, type LoginAttemptRow } from '../repositories/login-attempts.js'
import type { HandlerRegistry } from '../handlers/registry.js'
import type { CodeService } from './codes.js'
import type { LockoutService } from './lockout.js'
import type { LoginThrottleService } from './login-throttle.js'
import type { MethodService } from './methods.js'
import type { TokenService, IssuedTokens } from './tokens.js'
import type { EventBus, RequestContext } from './events.js'
import { type AuthKitUser, type UserStore, dummyPasswordHash } from '../users.js'
import type { MethodRow } from '../repositories/methods.js'
import { AuthKitErrors } from '../errors.js'

export interface LoginSettings {
  mfaEnabled: boolean
  ephemeralTokenExpiry: number
  maxAttemptsPerToken: number
}

export type LoginResult =
  | ({ mfa_enabled: false, user: Record<string, unknown> } & IssuedTokens)
  | { mfa_enabled: true, ephemeral_token: string, method: string, methods: string[] }

interface LiveAttempt {
  attempt: LoginAttemptRow
  user: AuthKitUser
  method: MethodRow
}

/** The two-step login (rule 2): attempts live server-side, hashed, single use. */
export class LoginService {
  private readonly attempts: LoginAttemptRepository

  constructor (
    db: Kysely<Database>,
    private readonly keyring: Keyring,
    private readonly users: UserStore<any>,
    private readonly registry: HandlerRegistry,
    private readonly codes: CodeService,
    private readonly methods: MethodService,
    private readonly lockout: LockoutService,
    private readonly throttle: LoginThrottleService,
    private readonly tokens: TokenService,
    private readonly events: EventBus,
    private readonly settings: LoginSettings,
    private readonly now: () => number,
  ) {
    this.attempts = new LoginAttemptRepository(db)
  }

  /** Tokens for a finished login, and the event that says so. */
  async finish (ctx: RequestContext, user: AuthKitUser, amr: string[]): Promise<IssuedTokens & { user: Record<string, unknown> }> {
    const tokens = await this.tokens.issue(String(user.id), amr)
    this.events.emit('login_succeeded', ctx, String(user.id))
    return { ...tokens, user: this.users.toPublic(user) }
  }

  /** One answer, in about one time, for an unknown user and a wrong password. */
  async checkPassword (ctx: RequestContext, login: string, password: string): Promise<AuthKitUser> {
    await this.throttle.reserve(ctx, login)
    const user = await this.users.findByLogin(login)
    if (user === null || user === undefined) {
      await slowVerify(password, await dummyPasswordHash())
      this.events.emit('login_failed', ctx, null)
      throw new AuthKitErrors.InvalidCredentials()
    }
    if (!(await this.users.verifyPassword(user, password))) {
      this.events.emit('login_failed', ctx, String(user.id))
      throw new AuthKitErrors.InvalidCredentials()
    }
    await this.throttle.passed(ctx, login)
    return user
  }

  async login (ctx: RequestContext, login: string, password: string): Promise<LoginResult> {
    const user = await this.checkPassword(ctx, login, password)
    const userId = String(user.id)
    const active = this.settings.mfaEnabled ? await this.methods.activeMethods(userId) : []
    if (active.length === 0) return { mfa_enabled: false, ...(await this.finish(ctx, user, ['pwd'])) }

    let primary = active.find((m) => m.isPrimary)
    if (primary === undefined) {
      await this.methods.settlePrimary(userId)
      primary = (await this.methods.activeMethods(userId)).find((m) => m.isPrimary) ?? active[0]
    }
    if (this.registry.require(primary.name).REQUIRES_DISPATCH) {
      await this.codes.dispatch(this.methods.handlerFor(user, primary), false)
    }
    const token = randomToken(32)
    const now = this.now()
    // Each new attempt clears the user's expired ones, so the table stays small without a job.
    await this.attempts.purgeExpired(userId, now)
    await this.attempts.insert({
      id: randomUUID(), tokenHash: this.keyring.hash(token), userId, method: primary.name,
      expiresAt: now + this.settings.ephemeralTokenExpiry * 1000, createdAt: now,
    })
    this.events.emit('mfa_challenge_started', ctx, userId, primary.name)
    return { mfa_enabled: true, ephemeral_token: token, method: primary.name, methods: active.map((m) => m.name) }
  }

  /** The attempt behind a token, if it can still be used; otherwise 401. */
  private async liveAttempt (token: string): Promise<LiveAttempt> {
    const attempt = await this.attempts.findByHashes(this.keyring.hashes(token))
    const now = this.now()
    if (attempt === undefined || attempt.usedAt !== null || attempt.expiresAt <= now || attempt.failures >= this.settings.maxAttemptsPerToken) {
      throw new AuthKitErrors.InvalidEphemeralToken()
    }
    const user = await this.users.findById(attempt.userId)
    const method = (await this.methods.activeMethods(attempt.userId)).find((m) => m.name === attempt.method)
    if (user === null || user === undefined || method === undefined) throw new AuthKitErrors.InvalidEphemeralToken()
    return { attempt, user, method }
  }

  async verify (ctx: RequestContext, token: string, code: string): Promise<IssuedTokens & { user: Record<string, unknown> }> {
    const { attempt, user, method } = await this.liveAttempt(token)
    const userId = attempt.userId
    let exhausted = false
    let backupOf: string | null = null
    const outcome = await this.lockout.checkOutcome(ctx, userId, method.name, async () => {
      // The attempt is held (marked used) while its code is checked, so a
      // parallel verify of the same token uses up no code of its own.
      const claimedAt = this.now()
      if (!(await this.attempts.claimForCheck(attempt.id, this.settings.maxAttemptsPerToken, claimedAt))) {
        exhausted = true
        return 'skipped'
      }
      let right = false
      try {
        right = await this.methods.handlerFor(user, method).validateOtpCode(code)
        if (!right) {
          const active = await this.methods.activeMethods(userId)
          backupOf = (await this.codes.consumeBackupCode(userId, active.map((m) => m.id), code))?.methodId ?? null
          right = backupOf !== null
        }
      } finally {
        if (!right) await this.attempts.releaseClaim(attempt.id, claimedAt)
      }
      return right ? 'right' : 'wrong'
    })
    if (exhausted) throw new AuthKitErrors.InvalidEphemeralToken()
    if (outcome !== 'right') {
      this.events.emit('mfa_failed', ctx, userId, method.name)
      throw new AuthKitErrors.InvalidCodeLogin()
    }
    this.events.emit('mfa_verified', ctx, userId, method.name)
    if (backupOf !== null) {
      const owner = (await this.methods.methodsOf(userId)).find((m) => m.id === backupOf)
      this.events.emit('backup_code_used', ctx, userId, owner?.name ?? method.name)
    }
    return this.finish(ctx, user, ['pwd', 'mfa'])
  }

  async changeMethod (ctx: RequestContext, token: string, newMethod: string): Promise<{ ephemeral_token: string, method: string }> {
    const { attempt, user } = await this.liveAttempt(token)
    if (newMethod === attempt.method) throw new AuthKitErrors.SameMethod()
    const target = (await this.methods.activeMethods(attempt.userId)).find((m) => m.name === newMethod)
    if (target === undefined) throw new AuthKitErrors.MethodNotFound()
    if (this.registry.require(newMethod).REQUIRES_DISPATCH) {
      await this.codes.dispatch(this.methods.handlerFor(user, target), false)
    }
    await this.attempts.rebind(attempt.id, newMethod)
    return { ephemeral_token: token, method: newMethod }
  }

  async resend (ctx: RequestContext, token: string): Promise<{ ephemeral_token: string, detail: string }> {
    const { attempt, user, method } = await this.liveAttempt(token)
    if (!this.registry.require(attempt.method).REQUIRES_DISPATCH) throw new AuthKitErrors.MethodNotDispatchable()
    await this.codes.dispatch(this.methods.handlerFor(user, method), true)
    return { ephemeral_token: token, detail: 'A new code has been sent.' }
  }
}

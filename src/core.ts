import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from './db/types.js'
import { Keyring } from './crypto.js'
import type { ResolvedOptions } from './options.js'
import { HandlerRegistry } from './handlers/registry.js'
import type { MfaHandler, MfaHandlerClass } from './handlers/base.js'
import { Mailer } from './mail.js'
import { BuiltInUserStore, withoutPasswordHash, type AuthKitUser, type UserStore } from './users.js'
import { EventBus, type RequestContext } from './services/events.js'
import { AMR_MFA, TokenService } from './services/tokens.js'
import { LockoutService } from './services/lockout.js'
import { CodeService } from './services/codes.js'
import { MethodService } from './services/methods.js'
import { LoginService } from './services/login.js'
import type { MethodSummary } from '../schemas/methods.js'
import type { LoginAnswer } from '../schemas/login.js'
import { LoginThrottleService } from './services/login-throttle.js'
import { AccountService } from './services/account.js'
import { Notifier } from './services/notifications.js'
import { MethodRepository } from './repositories/methods.js'
import type { SessionRow } from './repositories/sessions.js'
import { AuthKitErrors } from './errors.js'

/** Where a request came from, for the events and device labels it causes. */
export function requestContext (request: FastifyRequest): RequestContext {
  const ua = request.headers['user-agent']
  return { ip: request.ip, userAgent: typeof ua === 'string' ? ua : undefined }
}

/** The RFC 9470 challenge of a 401 `AUTH_KIT_STEP_UP_REQUIRED`; `maxAge` in seconds. */
export function stepUpChallenge (maxAge?: number): string {
  const parts = ['Bearer error="insufficient_user_authentication"', 'error_description="A second factor is required"']
  if (maxAge !== undefined) parts.push(`max_age="${maxAge}"`)
  return parts.join(', ')
}

function stepUpRequired (reply: FastifyReply, maxAge?: number): Error {
  const challenge = stepUpChallenge(maxAge)
  reply.header('WWW-Authenticate', challenge)
  const err = new AuthKitErrors.StepUpRequired(maxAge === undefined ? 'at login' : `within the last ${maxAge} seconds`)
  return Object.assign(err, { wwwAuthenticate: challenge })
}

/**
 * One plugin instance's parts, each built once at registration and handed
 * only what it uses: the handler map, the services that own the rules of
 * SPEC section 5, and the preHandlers the routes and the host share.
 */
export class AuthKitCore {
  readonly registry: HandlerRegistry
  readonly users: UserStore<any>
  readonly events: EventBus
  readonly tokens: TokenService
  readonly methods: MethodService
  readonly login: LoginService
  readonly account: AccountService
  readonly mailer: Mailer | null

  constructor (readonly db: Kysely<Database>, readonly options: ResolvedOptions, log: FastifyBaseLogger) {
    const { mfa, now } = options
    const keyring = new Keyring(options.secrets)
    this.registry = new HandlerRegistry(mfa.handlers, mfa)
    this.users = options.users ?? new BuiltInUserStore(db, now)
    this.mailer = options.email !== undefined ? new Mailer(options.email) : null
    this.events = new EventBus(options.onEvent, log, now)
    this.tokens = new TokenService({ db, keyring, settings: options.tokens, now })
    const lockout = new LockoutService({ settings: mfa, now })
    const codes = new CodeService({ db, keyring, settings: mfa, users: this.users, mailer: this.mailer, webauthn: options.webauthn, now })
    this.methods = new MethodService({ db, registry: this.registry, codes, lockout, events: this.events, policies: mfa, now })
    this.login = new LoginService({
      db, keyring, users: this.users, registry: this.registry, methods: this.methods, tokens: this.tokens, events: this.events, now,
      throttle: new LoginThrottleService(db, keyring, this.users, options.login, this.events, now),
      onUserGone: async (userId) => this.account.forgetGoneUser(userId),
      settings: mfa,
    })
    this.account = new AccountService({ db, tokens: this.tokens, methods: this.methods, events: this.events, now })
    if (options.notifications && this.mailer !== null) {
      new Notifier({
        mailer: this.mailer, users: this.users, applicationName: mfa.applicationName, template: options.email?.notificationTemplate,
        displayName: (name) => (this.registry.get(name) === undefined ? undefined : this.registry.displayName(name)),
      }).attach(this.events)
    }
  }

  /**
   * Any live access token, setup-only ones included: its user (without a
   * password hash) on `request.user`, its session on `request.authKitSession`.
   * 401 `AUTH_KIT_UNAUTHORIZED` for a missing, bad or expired token, a revoked
   * session, or a user the store no longer returns (rule 12).
   */
  readonly authenticateAny = async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    const claims = match === null ? null : this.tokens.verifyAccess(match[1])
    if (claims === null) throw new AuthKitErrors.Unauthorized()
    let session, user
    try {
      [session, user] = await Promise.all([this.tokens.liveSession(claims), this.users.findById(claims.sub)])
    } catch (err) {
      // A host's error handler would send the database's or the store's own words: log them, answer plainly.
      request.log.error({ err }, 'fastify-auth-kit: authentication failed unexpectedly')
      throw new AuthKitErrors.Internal()
    }
    if (session !== null && (user === null || user === undefined)) await this.account.forgetGoneUser(claims.sub)
    if (session === null || user === null || user === undefined) throw new AuthKitErrors.Unauthorized()
    request.user = withoutPasswordHash(user)
    request.authKitAmr = claims.amr
    // What a route may trust is what this token says: an older token of a
    // session that later stepped up still carries only what it was issued with.
    request.authKitSession = { ...session, amr: claims.amr, authTime: claims.authTime * 1000 }
  }

  /** preHandler for the host's routes: a finished login's token, or 401; a setup-only token is 403. */
  readonly authenticate = async (request: FastifyRequest, _reply?: FastifyReply): Promise<void> => {
    await this.authenticateAny(request)
    if (request.authKitSession!.setupOnly) throw new AuthKitErrors.MfaSetupRequired()
  }

  /**
   * A preHandler that also wants a second factor checked no longer than
   * `maxAge` seconds ago (default `mfa.stepUpMaxAge`; null: any age), else 401
   * `AUTH_KIT_STEP_UP_REQUIRED` with the RFC 9470 `WWW-Authenticate` challenge.
   */
  requireMfa (options: { maxAge?: number | null } = {}): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
    const maxAge = options.maxAge === undefined ? this.options.mfa.stepUpMaxAge : options.maxAge
    if (maxAge !== null && (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge < 0)) {
      throw new TypeError(`fastify-auth-kit: requireMfa({ maxAge }) takes whole seconds or null (got ${String(maxAge)})`)
    }
    const guard = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      await this.authenticate(request, reply)
      const session = request.authKitSession!
      const fresh = maxAge === null || this.options.now() - session.authTime <= maxAge * 1000
      if (!session.amr.includes(AMR_MFA) || !fresh) throw stepUpRequired(reply, maxAge ?? undefined)
    }
    this.stepUpGuards.add(guard)
    return guard
  }

  private readonly stepUpGuards = new WeakSet<object>()

  /** Whether `hook` is a preHandler made by `requireMfa` (it authenticates too). */
  isStepUpGuard (hook: unknown): boolean {
    return typeof hook === 'function' && this.stepUpGuards.has(hook)
  }

  /**
   * Rule 1's gate on the method routes: once the user has an active method,
   * a token without `mfa` in `amr` gets 401 `AUTH_KIT_STEP_UP_REQUIRED`.
   */
  async requireSecondFactorForChanges (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const session = request.authKitSession!
    if (session.amr.includes(AMR_MFA)) return
    if ((await this.methods.activeMethods(String(request.user.id))).length > 0) throw stepUpRequired(reply)
  }

  /** Step 1 for a user the host authenticated its own way: exactly what `POST /login/` answers. */
  async startLogin (request: FastifyRequest, user: AuthKitUser, options: { deviceToken?: string } = {}): Promise<LoginAnswer> {
    if (user === null || typeof user !== 'object' || user.id === undefined || user.id === null) throw new TypeError('fastify-auth-kit: startLogin(request, user) needs the record the user store returns')
    return this.login.start(requestContext(request), user, options.deviceToken)
  }

  /** A handler instance for a user's method, as the routes use it. Throws 404 `AUTH_KIT_METHOD_NOT_FOUND` if the user has no such method. */
  async handlerFor (userId: string, method: string): Promise<MfaHandler> {
    const user = await this.users.findById(userId)
    if (user === null || user === undefined) throw new Error(`fastify-auth-kit: no user ${userId}`)
    const row = await new MethodRepository(this.db).find(String(user.id), method)
    if (row === undefined) throw new AuthKitErrors.MethodNotFound()
    return this.methods.handlerFor(withoutPasswordHash(user as AuthKitUser), row)
  }
}

/** Support staff's tools, for the host's own admin routes (the plugin adds no route for them). Each emits its event with `ip` null. */
export interface AuthKitAdmin {
  /** What `GET /mfa/` would answer for the user. */
  listMethods (userId: string): Promise<MethodSummary[]>
  /** Deletes every method, backup code and trusted device of the user and ends every session. */
  resetMfa (userId: string): Promise<void>
  /** Ends the user's lock and clears the wrong-code count. */
  unlock (userId: string): Promise<void>
  /** Ends every session of the user (call it when you delete or disable a user). */
  revokeSessions (userId: string): Promise<void>
}

/** What `app.authKit` offers the host. */
export interface AuthKitDecorator {
  /** This instance's method handlers: `list()` names in order, `get(name)` the class. */
  handlers: { list (): string[], get (name: string): MfaHandlerClass | undefined }
  /** preHandler for the host's routes: puts the user on `request.user`, or 401 (403 for a setup-only token). */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  /** preHandler that also wants a second factor no older than `maxAge` seconds (SPEC section 9). */
  requireMfa: (options?: { maxAge?: number | null }) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  /** Step 1 for a user the host authenticated its own way (social login, magic link): what `POST /login/` answers. */
  startLogin: (request: FastifyRequest, user: AuthKitUser, options?: { deviceToken?: string }) => Promise<LoginAnswer>
  admin: AuthKitAdmin
  /** The Kysely instance in use (the host's, if it passed one). */
  db: Kysely<Database>
  users: UserStore<any>
  /** A bound handler for one user's method (for tests of a custom handler). */
  handlerFor (userId: string, method: string): Promise<MfaHandler>
}

export function decoratorOf (core: AuthKitCore): AuthKitDecorator {
  const { account } = core
  return {
    handlers: { list: () => core.registry.list(), get: (name: string) => core.registry.get(name) },
    authenticate: core.authenticate,
    requireMfa: (options) => core.requireMfa(options),
    startLogin: async (request, user, options) => core.startLogin(request, user, options),
    admin: {
      listMethods: async (userId) => account.listMethods(String(userId)),
      resetMfa: async (userId) => account.resetMfa(String(userId)),
      unlock: async (userId) => account.unlock(String(userId)),
      revokeSessions: async (userId) => account.revokeSessions(String(userId)),
    },
    db: core.db,
    users: core.users,
    handlerFor: async (userId, method) => core.handlerFor(userId, method),
  }
}

export type { SessionRow }

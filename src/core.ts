import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from './db/types.js'
import { Keyring } from './crypto.js'
import type { ResolvedOptions } from './options.js'
import { HandlerRegistry } from './handlers/registry.js'
import type { MfaHandler, MfaHandlerClass } from './handlers/base.js'
import { Mailer } from './mail.js'
import { BuiltInUserStore, type AuthKitUser, type UserStore } from './users.js'
import { EventBus } from './services/events.js'
import { TokenService } from './services/tokens.js'
import { LockoutService } from './services/lockout.js'
import { CodeService } from './services/codes.js'
import { MethodService } from './services/methods.js'
import { LoginService } from './services/login.js'
import { LoginThrottleService } from './services/login-throttle.js'
import { MethodRepository } from './repositories/methods.js'
import { AuthKitErrors } from './errors.js'

/** Everything one plugin instance holds, wired once at registration. */
export class AuthKitCore {
  readonly keyring: Keyring
  readonly registry: HandlerRegistry
  readonly users: UserStore<any>
  readonly events: EventBus
  readonly tokens: TokenService
  readonly lockout: LockoutService
  readonly codes: CodeService
  readonly methods: MethodService
  readonly login: LoginService
  readonly mailer: Mailer | null

  constructor (readonly db: Kysely<Database>, readonly options: ResolvedOptions, log: FastifyBaseLogger) {
    const { mfa, now } = options
    this.keyring = new Keyring(options.secrets)
    this.registry = new HandlerRegistry(mfa.handlers, mfa)
    this.users = options.users ?? new BuiltInUserStore(db, now)
    this.mailer = options.email !== undefined ? new Mailer(options.email) : null
    this.events = new EventBus(options.onEvent, log, now)
    this.tokens = new TokenService(db, this.keyring, options.tokens, now)
    this.lockout = new LockoutService(db, mfa, this.events, now)
    this.codes = new CodeService(db, this.keyring, mfa, this.users, this.mailer, now)
    this.methods = new MethodService(db, this.registry, this.codes, this.lockout, this.events, mfa, now)
    this.login = new LoginService(db, this.keyring, this.users, this.registry, this.codes, this.methods, this.lockout,
      new LoginThrottleService(db, this.keyring, this.users, options.login, this.events, now), this.tokens, this.events, {
      mfaEnabled: mfa.enabled, ephemeralTokenExpiry: mfa.ephemeralTokenExpiry, maxAttemptsPerToken: mfa.maxAttemptsPerToken,
    }, now)
  }

  /** preHandler: a valid access token's user on `request.user`, or 401. */
  readonly authenticate = async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    const claims = match === null ? null : this.tokens.verifyAccess(match[1])
    const user = claims === null ? null : await this.users.findById(claims.sub)
    if (user === null || user === undefined) throw new AuthKitErrors.Unauthorized()
    request.user = user
    request.authKitAmr = claims!.amr
  }

  /** A handler instance for a user's method, as the routes use it. */
  async handlerFor (userId: string, method: string): Promise<MfaHandler> {
    const user = await this.users.findById(userId)
    if (user === null || user === undefined) throw new Error(`fastify-auth-kit: no user ${userId}`)
    const row = await new MethodRepository(this.db).find(String(user.id), method)
    if (row === undefined) throw new AuthKitErrors.MethodNotFound()
    return this.methods.handlerFor(user as AuthKitUser, row)
  }
}

/** What `app.authKit` offers the host. */
export interface AuthKitDecorator {
  /** This instance's method handlers: `list()` names in order, `get(name)` the class. */
  handlers: { list (): string[], get (name: string): MfaHandlerClass | undefined }
  /** preHandler for the host's routes: puts the user on `request.user` or answers 401. */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  /** The Kysely instance in use (the host's, if it passed one). */
  db: Kysely<Database>
  users: UserStore<any>
  /** A bound handler for one user's method (for tests of a custom handler). */
  handlerFor (userId: string, method: string): Promise<MfaHandler>
}

export function decoratorOf (core: AuthKitCore): AuthKitDecorator {
  return {
    handlers: { list: () => core.registry.list(), get: (name: string) => core.registry.get(name) },
    authenticate: core.authenticate,
    db: core.db,
    users: core.users,
    handlerFor: async (userId, method) => core.handlerFor(userId, method),
  }
}

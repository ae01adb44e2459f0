import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from './db/types.js'
import type { MfaHandler, MfaHandlerClass } from './handlers/base.js'
import { withoutPasswordHash, type AuthKitUser, type UserStore } from './users.js'
import type { RequestContext } from './services/events.js'
import { AMR_MFA, type TokenService } from './services/tokens.js'
import type { MethodService } from './services/methods.js'
import type { AccountService } from './services/account.js'
import type { SessionRow } from './repositories/sessions.js'
import type { MethodSummary } from '../schemas/methods.js'
import type { LoginAnswer } from '../schemas/login.js'
import type { AuthKitParts } from './compose.js'
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

/** What the request guards read. */
export interface AuthKitGuardsProps {
  tokens: TokenService
  users: UserStore<any>
  account: AccountService
  methods: MethodService
  /** Seconds: the default `maxAge` of `requireMfa()` (`mfa.stepUpMaxAge`). */
  stepUpMaxAge: number
  /** The users live in the plugin's own table, so `authenticateAny` reads a session and its user in one query. */
  builtInUsers: boolean
  now: () => number
}

/**
 * The preHandlers the routes and the host share: who is asking
 * (`authenticateAny`, `authenticate`), how fresh their second factor must be
 * (`requireMfa`), and rule 1's gate on changes (`requireSecondFactorForChanges`).
 * Each is a bound function, so it can be handed to a route as it is.
 */
export class AuthKitGuards {
  private readonly tokens: TokenService
  private readonly users: UserStore<any>
  private readonly account: AccountService

  constructor (private readonly props: AuthKitGuardsProps) {
    this.tokens = props.tokens
    this.users = props.users
    this.account = props.account
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
    let session: SessionRow | null
    let user: AuthKitUser | null | undefined
    try {
      if (this.props.builtInUsers) {
        // One read; the user comes without its password hash (rule 7), so there is nothing to copy it out of.
        ({ session, user } = await this.tokens.liveSessionWithUser(claims))
      } else {
        [session, user] = await Promise.all([this.tokens.liveSession(claims), this.users.findById(claims.sub)])
        if (user !== null && user !== undefined) user = withoutPasswordHash(user)
      }
    } catch (err) {
      // A host's error handler would send the database's or the store's own words: log them, answer plainly.
      request.log.error({ err }, 'fastify-auth-kit: authentication failed unexpectedly')
      throw new AuthKitErrors.Internal()
    }
    if (session !== null && (user === null || user === undefined)) await this.account.forgetGoneUser(claims.sub)
    if (session === null || user === null || user === undefined) throw new AuthKitErrors.Unauthorized()
    request.user = user
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
    const maxAge = options.maxAge === undefined ? this.props.stepUpMaxAge : options.maxAge
    if (maxAge !== null && (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge < 0)) {
      throw new TypeError(`fastify-auth-kit: requireMfa({ maxAge }) takes whole seconds or null (got ${String(maxAge)})`)
    }
    const guard = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      await this.authenticate(request, reply)
      const session = request.authKitSession!
      const fresh = maxAge === null || this.props.now() - session.authTime <= maxAge * 1000
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
  readonly requireSecondFactorForChanges = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const session = request.authKitSession!
    if (session.amr.includes(AMR_MFA)) return
    if ((await this.props.methods.activeMethods(String(request.user.id))).length > 0) throw stepUpRequired(reply)
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
  /**
   * preHandler for the host's routes: puts the store's record (without a
   * password hash) on `request.user` and the token's session on
   * `request.authKitSession`. Throws 401 `AUTH_KIT_UNAUTHORIZED` (missing, bad
   * or expired token, ended session, user gone) and 403
   * `AUTH_KIT_MFA_SETUP_REQUIRED` for a setup-only token.
   */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  /**
   * A preHandler that authenticates and also wants a second factor checked at
   * most `maxAge` seconds ago (default `mfa.stepUpMaxAge`; null: any age), else
   * 401 `AUTH_KIT_STEP_UP_REQUIRED` with an RFC 9470 `WWW-Authenticate`
   * challenge (SPEC section 9). Throws `TypeError` at once for a `maxAge` that
   * is not whole seconds or null.
   */
  requireMfa: (options?: { maxAge?: number | null }) => (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  /**
   * Step 1 for a user the host authenticated its own way (social login, magic
   * link): exactly what `POST /login/` answers for that user, `deviceToken`
   * as its `device_token`. Throws `TypeError` for anything but a store record
   * with an `id`, and the errors of step 1 (422 `AUTH_KIT_NO_EMAIL_ADDRESS`,
   * 503 `AUTH_KIT_DELIVERY_FAILED`) when the primary method sends a code.
   */
  startLogin: (request: FastifyRequest, user: AuthKitUser, options?: { deviceToken?: string }) => Promise<LoginAnswer>
  admin: AuthKitAdmin
  /** The Kysely instance in use (the host's, if it passed one). */
  db: Kysely<Database>
  /** The user store in use: the host's `users`, or the built-in one. */
  users: UserStore<any>
  /**
   * A handler instance for one user's method, bound to this plugin (for tests
   * of a custom handler). Throws 404 `AUTH_KIT_METHOD_NOT_FOUND` if the user
   * has no method `method` (set up or not), and `Error` if the store returns
   * no user `userId` or this instance has no handler named `method`.
   */
  handlerFor (userId: string, method: string): Promise<MfaHandler>
}

/** `app.authKit`: the guards, the admin tools and step 1 for the host's own ways in, over one instance's parts. */
export function decoratorOf ({ db, registry, users, login, account, methods, repositories, guards }: AuthKitParts): AuthKitDecorator {
  return {
    handlers: { list: () => registry.list(), get: (name: string) => registry.get(name) },
    authenticate: guards.authenticate,
    requireMfa: (options) => guards.requireMfa(options),
    startLogin: async (request, user, options = {}) => {
      if (user === null || typeof user !== 'object' || user.id === undefined || user.id === null) throw new TypeError('fastify-auth-kit: startLogin(request, user) needs the record the user store returns')
      return login.start(requestContext(request), user, options.deviceToken)
    },
    admin: {
      listMethods: async (userId) => account.listMethods(String(userId)),
      resetMfa: async (userId) => account.resetMfa(String(userId)),
      unlock: async (userId) => account.unlock(String(userId)),
      revokeSessions: async (userId) => account.revokeSessions(String(userId)),
    },
    db,
    users,
    handlerFor: async (userId, method) => {
      const user = await users.findById(userId)
      if (user === null || user === undefined) throw new Error(`fastify-auth-kit: no user ${userId}`)
      const row = await repositories.methods.find(String(user.id), method)
      if (row === undefined) throw new AuthKitErrors.MethodNotFound()
      return methods.handlerFor(withoutPasswordHash(user as AuthKitUser), row)
    },
  }
}

export type { SessionRow }

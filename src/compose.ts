import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from './db/types.js'
import { Keyring } from './crypto.js'
import type { ResolvedOptions } from './options.js'
import { HandlerRegistry } from './handlers/registry.js'
import type { Mailer } from './mail.js'
import { BuiltInUserStore, type UserStore } from './users.js'
import { type Repositories, repositoriesOf } from './repositories/index.js'
import { EventBus } from './services/events.js'
import { TokenService } from './services/tokens.js'
import { LockoutService } from './services/lockout.js'
import { CodeService } from './services/codes.js'
import { MethodService } from './services/methods.js'
import { LoginService } from './services/login.js'
import { LoginThrottleService } from './services/login-throttle.js'
import { AccountService } from './services/account.js'
import { Notifier } from './services/notifications.js'
import { AuthKitGuards } from './core.js'

/** One plugin instance's parts, each built once at registration. */
export interface AuthKitParts {
  readonly db: Kysely<Database>
  readonly registry: HandlerRegistry
  readonly users: UserStore<any>
  /** Null without `email.transport`. */
  readonly mailer: Mailer | null
  readonly events: EventBus
  readonly repositories: Repositories
  readonly tokens: TokenService
  readonly methods: MethodService
  readonly login: LoginService
  readonly account: AccountService
  readonly guards: AuthKitGuards
}

/**
 * Builds every repository and service of one plugin instance once, each
 * handed only what it uses (one props object apiece, as Kysely's classes
 * take theirs). Nothing here runs a query.
 */
export function composeAuthKit ({ db, options, mailer, log }: { db: Kysely<Database>, options: ResolvedOptions, mailer: Mailer | null, log: FastifyBaseLogger }): AuthKitParts {
  const { mfa, now } = options
  const keyring = new Keyring(options.secrets)
  const repositories = repositoriesOf(db)
  const registry = new HandlerRegistry(mfa.handlers, mfa)
  const users = options.users ?? new BuiltInUserStore(db, now)
  const events = new EventBus(options.onEvent, log, now)
  const tokens = new TokenService({ db, repositories, keyring, settings: options.tokens, builtInUsers: options.users === undefined, now })
  const lockout = new LockoutService({ settings: mfa, now })
  const codes = new CodeService({ db, repositories, keyring, settings: mfa, users, mailer, webauthn: options.webauthn, now })
  const methods = new MethodService({ db, repositories, registry, codes, lockout, events, policies: mfa, now })
  const account = new AccountService({ db, repositories, tokens, methods, events, now })
  const login = new LoginService({
    db, repositories, keyring, users, registry, methods, tokens, events, now,
    throttle: new LoginThrottleService({ repositories, keyring, settings: options.login, events, now }),
    builtInUsers: options.users === undefined,
    onUserGone: async (userId) => account.forgetGoneUser(userId),
    settings: mfa,
  })
  if (options.notifications && mailer !== null) {
    new Notifier({
      mailer, users, applicationName: mfa.applicationName, template: options.email?.notificationTemplate,
      displayName: (name) => (registry.get(name) === undefined ? undefined : registry.displayName(name)),
    }).attach(events)
  }
  const guards = new AuthKitGuards({ tokens, users, account, methods, now, stepUpMaxAge: mfa.stepUpMaxAge, builtInUsers: options.users === undefined })
  return { db, registry, users, mailer, events, repositories, tokens, methods, login, account, guards }
}

import type { Kysely } from 'kysely'
import { distance as levenshtein } from 'fastest-levenshtein'
import { AuthKitOptionsError } from './errors.js'
import { MfaHandler, type MfaHandlerClass, type WebAuthnSettings } from './handlers/base.js'
import { AppHandler } from './handlers/app.js'
import { EmailHandler } from './handlers/email.js'
import type { EmailOptions } from './mail.js'
import type { AuthKitUser, UserStore } from './users.js'
import type { AuthKitEvent } from './services/events.js'

/** A whole-number option: its default and the range a value must be in. */
interface WholeNumber { default: number, min: number, max: number }
/** A true-or-false option and its default. */
interface Flag { default: boolean }

function whole (value: number, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}): WholeNumber {
  return { default: value, min, max }
}
function flag (value: boolean): Flag {
  return { default: value }
}

/**
 * Every default of the plugin's options, in one table (as @fastify/rate-limit
 * keeps its defaults): `AuthKitOptions` and `ResolvedOptions` take their
 * types from it, the services theirs from `ResolvedOptions`. A string entry
 * is the default of an option checked by hand in `resolveOptions`.
 */
export const DEFAULTS = {
  /** Where the data lives: `sqlite:PATH`, `sqlite::memory:`, `postgres://…`, `mysql://…`. @default 'sqlite:auth-kit.db' */
  database: 'sqlite:auth-kit.db',
  /** Run the bundled migrations at registration (idempotent). @default true */
  migrate: flag(true),
  /** Path the routes live under, starting with "/". @default '/api/auth' */
  prefix: '/api/auth',
  /** Expose `POST /registration/` (built-in user store). @default false */
  registration: flag(false),
  tokens: {
    /** Seconds an access token lives. @default 300 */
    accessTokenExpiry: whole(300),
    /** Seconds a refresh token (and so an idle session) lives. @default 86400 */
    refreshTokenExpiry: whole(86400),
    /** Seconds after a rotation in which the spent refresh token, shown again, gets 401 but revokes nothing (two tabs), 0 to 3600. @default 10 */
    refreshReuseGrace: whole(10, { min: 0, max: 3600 }),
  },
  /** Password guessing at step 1 (rule 13). */
  login: {
    /** Wrong passwords for one account from one client address within `failureWindow`; past it, 429 `AUTH_KIT_LOGIN_THROTTLED`. @default 5 */
    maxFailuresPerClient: whole(5),
    /** Wrong passwords from one client address, any accounts, within `failureWindow`; past it, 429. @default 100 */
    maxFailuresPerAddress: whole(100),
    /** Seconds over which wrong passwords are counted. @default 900 */
    failureWindow: whole(900),
  },
  mfa: {
    /** `false`: login is one step for everyone and the MFA routes are not registered. @default true */
    enabled: flag(true),
    /** Days a remembered device skips the second step, 0 to 3650; 0 turns remembering off. @default 30 */
    trustedDeviceDays: whole(30, { min: 0, max: 3650 }),
    /** Seconds: the default `maxAge` of `app.authKit.requireMfa()`. @default 900 */
    stepUpMaxAge: whole(900),
    /** Seconds of a TOTP step (RFC 6238), at most 3600; a handler's `TOTP_INTERVAL` overrides it. @default 30 */
    totpInterval: whole(30, { max: 3600 }),
    /** TOTP steps accepted either side of now, 0 to 10; a handler's `TOTP_VALID_WINDOW` overrides it. @default 1 */
    totpValidWindow: whole(1, { min: 0, max: 10 }),
    backupCodes: {
      /** Backup codes per method, 1 to 100 (none would leave a user who loses the factor locked out). @default 10 */
      count: whole(10, { max: 100 }),
      /** Crockford base32 characters per code, 8 to 64 (16 = 80 bits). @default 16 */
      length: whole(16, { min: 8, max: 64 }),
      /** Store a salted scrypt hash of each code; `false` stores a keyed HMAC (faster, never plain text). @default true */
      secureHash: flag(true),
    },
    /** Seconds a login attempt (its `ephemeral_token`) lives. @default 600 */
    ephemeralTokenExpiry: whole(600),
    /** Seconds a sent code lives (email, and any sending method without its own `CODE_EXPIRY`). @default 600 */
    emailCodeExpiry: whole(600),
    /** Seconds between two codes sent for one method of one user; 0 for none. @default 30 */
    resendCooldown: whole(30, { min: 0 }),
    /** Issuer shown in authenticator apps and mails: not empty, no ":". @default 'My App' */
    applicationName: 'My App',
    /** Wrong codes after which a login attempt is dead. @default 5 */
    maxAttemptsPerToken: whole(5),
    /** Consecutive wrong codes (any attempt, method or route) that lock the user. @default 10 */
    lockoutThreshold: whole(10),
    /** Seconds of the first lock; each further lock without a right code between doubles it, up to a day. @default 900 */
    lockoutDuration: whole(900),
    /** Refuse to delete an active method (403 `AUTH_KIT_ACTIVE_METHOD_PROTECTED`). @default false */
    preventDeleteActiveMethod: flag(false),
    /** Refuse to delete the primary method (403 `AUTH_KIT_PRIMARY_METHOD_PROTECTED`). @default false */
    preventDeletePrimaryMethod: flag(false),
    /** Deleting an active method needs one of its codes. @default true */
    deleteActiveMethodRequireCode: flag(true),
    /** Changing the primary needs a code of the current primary. @default true */
    updatePrimaryMethodRequirePrimaryCode: flag(true),
  },
  email: {
    /** Seconds one delivery may take, at most 600; past it the route answers 503 `AUTH_KIT_DELIVERY_FAILED` and nothing changes. @default 10 */
    timeout: whole(10, { max: 600 }),
  },
  docs: {
    /** Path of Swagger UI, starting with "/"; the OpenAPI document is at `routePrefix + '/json'`. @default '/api/docs' */
    routePrefix: '/api/docs',
  },
}

/** The options as given: every one optional. */
type Given<T> = { [K in keyof T]?: T[K] extends WholeNumber ? number : T[K] extends Flag ? boolean : T[K] extends string ? string : Given<T[K]> }
/** The options in force: every one set. */
type Settled<T> = { [K in keyof T]: T[K] extends WholeNumber ? number : T[K] extends Flag ? boolean : T[K] extends string ? string : Settled<T[K]> }
type Defaults = typeof DEFAULTS

/**
 * The plugin's options. Bad ones, and keys none of them names (at any level),
 * fail registration with an `AuthKitOptionsError` that names the option.
 */
export interface AuthKitOptions extends Given<Omit<Defaults, 'database' | 'mfa' | 'email' | 'docs'>> {
  /**
   * At least 32 characters, or an array of them, newest first (key rotation):
   * signs access tokens; the keys that encrypt TOTP secrets and hash codes and
   * tokens are derived from it. Required.
   */
  secret: string | string[]
  /**
   * `sqlite:PATH`, `sqlite::memory:`, `postgres://…`, `mysql://…`, or a
   * Kysely instance of the host's (borrowed: never destroyed by the plugin).
   * @default 'sqlite:auth-kit.db'
   */
  database?: string | Kysely<any>
  /** The host's own user model (SPEC section 7). @default the built-in `auth_kit_user` table */
  users?: UserStore<any>
  mfa?: Given<Defaults['mfa']> & {
    /**
     * `true`, or a function of the user read at each login: users it covers
     * who have no active method get a setup-only token and must enrol before a
     * normal session (SPEC section 9). No effect while `enabled` is false.
     * @default false
     */
    required?: boolean | ((user: AuthKitUser) => boolean | Promise<boolean>)
    /**
     * The methods on offer, in this order: classes extending `MfaHandler`,
     * with distinct `NAME`s. A method that mails needs `email.transport`.
     * @default [AppHandler, EmailHandler], or [AppHandler] without `email`
     */
    handlers?: MfaHandlerClass[]
  }
  /** Code and notification mails; `from` is required with `transport`. @default none: no method that mails */
  email?: EmailOptions
  /** Security notification mails (SPEC section 9). @default true when `email` is set */
  notifications?: boolean
  /**
   * The WebAuthn relying party of passkeys (SPEC section 10); required when
   * `PasskeyHandler` is in `mfa.handlers`, and without a default (each field is
   * the host's own). `rpID`: the domain credentials are
   * scoped to, the host of every origin or a parent domain of it (`example.com`).
   * `rpName`: the name authenticators show. `origins`: every origin a passkey
   * may be used from (`https://app.example.com`; `http:` only for `localhost`).
   */
  webauthn?: { rpID: string, rpName: string, origins: string[] | string }
  /** Swagger UI and the OpenAPI document; `false` serves neither. @default { routePrefix: '/api/docs' } */
  docs?: false | Given<Defaults['docs']>
  /** Called for every security event; never awaited by a route, and a throw is only logged. @default none */
  onEvent?: (event: AuthKitEvent) => void | Promise<void>
  /** The clock, in milliseconds since the epoch: TOTP steps, every expiry and the JWT `iat`/`exp` follow it. @default Date.now */
  now?: () => number
}

/** The options in force, every default filled in. */
export interface ResolvedOptions extends Settled<Omit<Defaults, 'database' | 'mfa' | 'email' | 'docs'>> {
  secrets: string[]
  database: string | Kysely<any>
  users?: UserStore<any>
  mfa: Settled<Defaults['mfa']> & {
    required: (user: AuthKitUser) => boolean | Promise<boolean>
    handlers: MfaHandlerClass[]
  }
  email?: EmailOptions & Settled<Defaults['email']> & { from: string }
  notifications: boolean
  /** The relying party of passkeys, or null when the option is not set. */
  webauthn: WebAuthnSettings | null
  docs: false | Settled<Defaults['docs']>
  onEvent?: (event: AuthKitEvent) => void | Promise<void>
  now: () => number
}

export const HANDLER_NAME = /^[a-z][a-z0-9_]*$/

/**
 * Keys the plugin reads besides the groups and entries of DEFAULTS (checked
 * by hand in `resolveOptions`), by the path of their group ('' the top). A
 * path here that DEFAULTS lacks (`webauthn`) is a group of its own.
 */
const HAND_CHECKED: Readonly<Record<string, readonly string[]>> = {
  '': ['secret', 'users', 'notifications', 'webauthn', 'onEvent', 'now'] satisfies Array<keyof AuthKitOptions>,
  mfa: ['required', 'handlers'] satisfies Array<keyof NonNullable<AuthKitOptions['mfa']>>,
  email: ['transport', 'from', 'template', 'notificationTemplate'] satisfies Array<keyof EmailOptions>,
  webauthn: ['rpID', 'rpName', 'origins'] satisfies Array<keyof NonNullable<AuthKitOptions['webauthn']>>,
}

/** What Fastify's `register` takes for itself (its `RegisterOptions`) and hands on within the plugin's options; `prefix` is ours too. */
const FASTIFY_REGISTER_KEYS = ['prefix', 'logLevel', 'logSerializers']

/** An entry of DEFAULTS that holds options, not one option's default. */
function isGroup (rule: unknown): rule is Record<string, unknown> {
  return typeof rule === 'object' && rule !== null && !('default' in rule)
}

/**
 * Every group of options the plugin defines, by path, with the keys it
 * takes. The values under any other key (a Kysely instance, a transport, a
 * user store, handler classes, functions) are the host's and never looked into.
 */
const OPTION_GROUPS: ReadonlyMap<string, ReadonlySet<string>> = (() => {
  const groups = new Map<string, Set<string>>()
  const walk = (path: string, rules: Record<string, unknown>): void => {
    groups.set(path, new Set(Object.keys(rules)))
    for (const [key, rule] of Object.entries(rules)) if (isGroup(rule)) walk(path === '' ? key : `${path}.${key}`, rule)
  }
  walk('', DEFAULTS)
  for (const [path, keys] of Object.entries(HAND_CHECKED)) {
    const known = groups.get(path) ?? new Set<string>()
    for (const key of keys) known.add(key)
    groups.set(path, known)
  }
  for (const key of FASTIFY_REGISTER_KEYS) groups.get('')!.add(key)
  return groups
})()

/** Edits (insert, delete, replace) from `a` to `b`, case ignored (Levenshtein distance). */
function editDistance (a: string, b: string): number {
  return levenshtein(a.toLowerCase(), b.toLowerCase())
}

/**
 * The option an unknown key most likely meant: the closest key of its own
 * group, else a key of the same name (or nearly) in another group
 * (`lockoutThreshold` at the top is `mfa.lockoutThreshold`). Close: at most a
 * third of the key's letters wrong, 2 (two swapped letters) in any key, never
 * more than 3.
 */
function likelyMeant (path: string, key: string): string | undefined {
  const limit = Math.min(3, Math.max(2, Math.floor(key.length / 3)))
  const closest = (groups: Array<[string, ReadonlySet<string>]>): string | undefined => {
    let best: { option: string, distance: number } | undefined
    for (const [groupPath, keys] of groups) {
      for (const candidate of keys) {
        const distance = editDistance(key, candidate)
        if (distance <= limit && (best === undefined || distance < best.distance)) best = { option: groupPath === '' ? candidate : `${groupPath}.${candidate}`, distance }
      }
    }
    return best?.option
  }
  const groups = [...OPTION_GROUPS]
  return closest(groups.filter(([groupPath]) => groupPath === path)) ?? closest(groups.filter(([groupPath]) => groupPath !== path))
}

/**
 * Refuses a key no group of the options defines, at any depth, so a typo
 * (`mfa.lockoutTreshold`) fails registration instead of leaving a security
 * setting at its default. A group given as something other than an object
 * is refused too (`docs` may also be false).
 */
function refuseUnknownKeys (path: string, given: unknown): void {
  if (given === undefined || (path === 'docs' && given === false)) return
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new AuthKitOptionsError(path, `must be an object of options${path === 'docs' ? ' or false' : ''} (got ${shown(given)})`)
  }
  const known = OPTION_GROUPS.get(path)!
  for (const [key, value] of Object.entries(given)) {
    const option = path === '' ? key : `${path}.${key}`
    if (!known.has(key)) {
      const meant = likelyMeant(path, key)
      throw new AuthKitOptionsError(option, meant === undefined
        ? `is unknown; ${path === '' ? 'the plugin' : path} takes ${[...known].join(', ')}`
        : `is unknown: did you mean ${meant}?`)
    }
    if (OPTION_GROUPS.has(option)) refuseUnknownKeys(option, value)
  }
}

/**
 * What a refused value was, for an error message: a number, boolean, null or
 * undefined as itself; anything else by its kind only. A string given in the
 * wrong place may be a secret or a URL with a password (`email:
 * 'smtps://user:pass@host'`), and error messages end up in logs.
 */
function shown (value: unknown): string {
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (typeof value === 'string') return 'a string'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'function' ? 'a function' : `a value of type ${typeof value}`
}

function positiveInt (option: string, value: unknown, fallback: number, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new AuthKitOptionsError(option, `must be a whole number from ${min} to ${max} (got ${shown(value)})`)
  }
  return value
}

function bool (option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new AuthKitOptionsError(option, `must be true or false (got ${shown(value)})`)
  return value
}

/**
 * The given values of a group of the table, checked, with its defaults
 * filled in. String entries are taken as given: their checks are the caller's.
 */
function settle<T extends object> (path: string, given: unknown, rules: T): Settled<T> {
  const values = (typeof given === 'object' && given !== null ? given : {}) as Record<string, unknown>
  const settled: Record<string, unknown> = {}
  for (const [key, rule] of Object.entries(rules) as Array<[string, unknown]>) {
    const option = path === '' ? key : `${path}.${key}`
    if (typeof rule === 'string') settled[key] = values[key] ?? rule
    else if (typeof (rule as Flag).default === 'boolean') settled[key] = bool(option, values[key], (rule as Flag).default)
    else if (typeof (rule as WholeNumber).default === 'number') {
      const { default: fallback, min, max } = rule as WholeNumber
      settled[key] = positiveInt(option, values[key], fallback, { min, max })
    } else settled[key] = settle(option, values[key], rule as object)
  }
  return settled as Settled<T>
}

function isHandlerClass (value: unknown): value is MfaHandlerClass {
  return typeof value === 'function' && value.prototype instanceof MfaHandler
}

export function checkHandlers (handlers: unknown, emailConfigured: boolean, webauthnConfigured = false): MfaHandlerClass[] {
  if (!Array.isArray(handlers) || handlers.length === 0) throw new AuthKitOptionsError('mfa.handlers', 'must be a non-empty array of MfaHandler classes')
  const seen = new Map<string, string>()
  for (const [i, cls] of handlers.entries()) {
    const label = typeof cls === 'function' && cls.name !== '' ? cls.name : `entry ${i}`
    if (!isHandlerClass(cls)) throw new AuthKitOptionsError('mfa.handlers', `has ${label}, which is not a class extending MfaHandler`)
    if (typeof cls.NAME !== 'string' || cls.NAME === '') throw new AuthKitOptionsError('mfa.handlers', `has ${label} without a static NAME`)
    if (!HANDLER_NAME.test(cls.NAME) || cls.NAME.length > 64) throw new AuthKitOptionsError('mfa.handlers', `has ${label} whose NAME "${cls.NAME}" is not lower-case letters, digits and underscores starting with a letter`)
    const other = seen.get(cls.NAME)
    if (other !== undefined) throw new AuthKitOptionsError('mfa.handlers', `has two handlers named "${cls.NAME}" (${other} and ${label})`)
    seen.set(cls.NAME, label)
    if (typeof cls.REQUIRES_DISPATCH !== 'boolean') throw new AuthKitOptionsError('mfa.handlers', `has ${label} whose REQUIRES_DISPATCH is not a boolean`)
    for (const key of ['DISPLAY_NAME', 'SETUP_RESPONSE_MESSAGE'] as const) {
      if (typeof cls[key] !== 'string') throw new AuthKitOptionsError('mfa.handlers', `has ${label} whose ${key} is not a string`)
    }
    if (typeof cls.setupDataSchema !== 'object' || cls.setupDataSchema === null) throw new AuthKitOptionsError('mfa.handlers', `has ${label} whose setupDataSchema is not a JSON schema (TypeBox) object`)
    for (const key of ['TOTP_INTERVAL', 'TOTP_VALID_WINDOW', 'CODE_EXPIRY'] as const) {
      const v = cls[key]
      if (v !== undefined) positiveInt(`mfa.handlers (${label}.${key})`, v, 0, { min: key === 'TOTP_VALID_WINDOW' ? 0 : 1, max: key === 'TOTP_VALID_WINDOW' ? 10 : 86400 })
    }
    if ((cls as unknown as { SENDS_EMAIL?: boolean }).SENDS_EMAIL === true && !emailConfigured) {
      throw new AuthKitOptionsError('mfa.handlers', `lists ${label}, which sends email, but email.transport is not set`)
    }
    if ((cls as unknown as { USES_WEBAUTHN?: boolean }).USES_WEBAUTHN === true && !webauthnConfigured) {
      throw new AuthKitOptionsError('webauthn', `is required when ${label} is in mfa.handlers: set webauthn: { rpID, rpName, origins }`)
    }
    for (const key of ['challengeSchema', 'sendChallengeSchema', 'credentialSchema', 'setupCredentialSchema'] as const) {
      const schema = cls[key]
      if (schema !== undefined && (typeof schema !== 'object' || schema === null)) throw new AuthKitOptionsError('mfa.handlers', `has ${label} whose ${key} is not a JSON schema (TypeBox) object`)
    }
  }
  return handlers as MfaHandlerClass[]
}

/** A host name as a WebAuthn relying party id: a domain, no scheme, port or path. */
const RP_ID = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

/**
 * The `webauthn` option (WebAuthn Level 3, section 5.1.4.1 and 13.4.9): every
 * origin must be https (http only on localhost, a secure context) and its host
 * the rpID or a subdomain of it, or no browser would ever answer.
 */
function resolveWebAuthn (value: unknown): WebAuthnSettings | null {
  if (value === undefined) return null
  if (typeof value !== 'object' || value === null) throw new AuthKitOptionsError('webauthn', 'must be an object { rpID, rpName, origins }')
  const { rpID, rpName, origins } = value as Record<string, unknown>
  if (typeof rpID !== 'string' || !RP_ID.test(rpID)) throw new AuthKitOptionsError('webauthn.rpID', `must be a lower-case domain name without scheme or port, such as "example.com" (got ${JSON.stringify(rpID)})`)
  if (typeof rpName !== 'string' || rpName.trim() === '' || rpName.length > 64) throw new AuthKitOptionsError('webauthn.rpName', 'must be a non-empty string of at most 64 characters')
  const list = typeof origins === 'string' ? [origins] : origins
  if (!Array.isArray(list) || list.length === 0) throw new AuthKitOptionsError('webauthn.origins', 'must be an origin or a non-empty array of origins, such as ["https://example.com"]')
  for (const origin of list) {
    let url: URL
    try {
      url = new URL(String(origin))
    } catch {
      throw new AuthKitOptionsError('webauthn.origins', `has ${JSON.stringify(origin)}, which is not a URL`)
    }
    if (typeof origin !== 'string' || url.origin !== origin) throw new AuthKitOptionsError('webauthn.origins', `has ${JSON.stringify(origin)}: write an origin alone, scheme and host (and port), no path or trailing slash`)
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && url.hostname === 'localhost')) throw new AuthKitOptionsError('webauthn.origins', `has ${origin}: passkeys need https (http only on localhost)`)
    if (url.hostname !== rpID && !url.hostname.endsWith(`.${rpID}`)) throw new AuthKitOptionsError('webauthn.origins', `has ${origin}, whose host is neither webauthn.rpID "${rpID}" nor a subdomain of it`)
  }
  return { rpID, rpName, origins: [...list as string[]] }
}

/** `mfa.required` as a function of the user; nobody is required while MFA is off. */
function requiredPolicy (value: unknown, enabled: boolean): ResolvedOptions['mfa']['required'] {
  if (value !== undefined && typeof value !== 'boolean' && typeof value !== 'function') {
    throw new AuthKitOptionsError('mfa.required', `must be true, false or a function of the user (got ${shown(value)})`)
  }
  if (!enabled || value === undefined || value === false) return () => false
  if (value === true) return () => true
  return value as ResolvedOptions['mfa']['required']
}

export function resolveOptions (raw: AuthKitOptions | undefined): ResolvedOptions {
  const o = (raw ?? {}) as AuthKitOptions
  refuseUnknownKeys('', o)
  const secrets = Array.isArray(o.secret) ? o.secret : [o.secret]
  if (secrets.length === 0 || secrets.some((s) => typeof s !== 'string' || s.length < 32)) {
    throw new AuthKitOptionsError('secret', 'is required: a string of at least 32 characters, or an array of them (newest first)')
  }
  const database = o.database ?? DEFAULTS.database
  if (typeof database !== 'string' && (typeof database !== 'object' || database === null || typeof (database as any).selectFrom !== 'function')) {
    throw new AuthKitOptionsError('database', 'must be a connection string or a Kysely instance')
  }
  const prefix = o.prefix ?? DEFAULTS.prefix
  if (typeof prefix !== 'string' || !prefix.startsWith('/')) throw new AuthKitOptionsError('prefix', 'must be a path starting with "/"')

  let email: ResolvedOptions['email']
  if (o.email !== undefined && o.email.transport !== undefined) {
    if (typeof o.email.from !== 'string' || o.email.from === '') throw new AuthKitOptionsError('email.from', 'is required with email.transport')
    if (o.email.template !== undefined && typeof o.email.template !== 'function') throw new AuthKitOptionsError('email.template', 'must be a function')
    if (o.email.notificationTemplate !== undefined && typeof o.email.notificationTemplate !== 'function') throw new AuthKitOptionsError('email.notificationTemplate', 'must be a function')
    email = { ...o.email, from: o.email.from, ...settle('email', o.email, DEFAULTS.email) }
  }
  const m = o.mfa ?? {}
  const webauthn = resolveWebAuthn(o.webauthn)
  const handlers = checkHandlers(m.handlers ?? (email !== undefined ? [AppHandler, EmailHandler] : [AppHandler]), email !== undefined, webauthn !== null)

  let docs: ResolvedOptions['docs'] = false
  if (o.docs !== false) {
    docs = settle('docs', o.docs, DEFAULTS.docs)
    if (typeof docs.routePrefix !== 'string' || !docs.routePrefix.startsWith('/')) throw new AuthKitOptionsError('docs.routePrefix', 'must be a path starting with "/"')
  }
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function') throw new AuthKitOptionsError('onEvent', 'must be a function')
  if (o.now !== undefined && typeof o.now !== 'function') throw new AuthKitOptionsError('now', 'must be a function returning milliseconds')
  if (o.users !== undefined) {
    for (const fn of ['findByLogin', 'findById', 'verifyPassword', 'toPublic', 'emailOf'] as const) {
      if (typeof (o.users as any)[fn] !== 'function') throw new AuthKitOptionsError('users', `must implement ${fn}()`)
    }
  }
  const mfa = settle('mfa', m, DEFAULTS.mfa)
  if (typeof mfa.applicationName !== 'string' || mfa.applicationName === '' || mfa.applicationName.includes(':')) {
    throw new AuthKitOptionsError('mfa.applicationName', 'must be a non-empty string without ":"')
  }
  return {
    secrets,
    database,
    prefix: prefix.replace(/\/+$/, ''),
    users: o.users,
    ...settle('', o, { migrate: DEFAULTS.migrate, registration: DEFAULTS.registration }),
    tokens: settle('tokens', o.tokens, DEFAULTS.tokens),
    login: settle('login', o.login, DEFAULTS.login),
    mfa: { ...mfa, required: requiredPolicy(m.required, mfa.enabled), handlers },
    email,
    notifications: bool('notifications', o.notifications, email !== undefined) && email !== undefined,
    webauthn,
    docs,
    onEvent: o.onEvent,
    now: o.now ?? Date.now,
  }
}

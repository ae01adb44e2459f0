import type { Kysely } from 'kysely'
import { AuthKitOptionsError } from './errors.js'
import { MfaHandler, type MfaHandlerClass, type WebAuthnSettings } from './handlers/base.js'
import { AppHandler } from './handlers/app.js'
import { EmailHandler } from './handlers/email.js'
import { DEFAULT_DELIVERY_TIMEOUT, type EmailOptions } from './mail.js'
import type { AuthKitUser, UserStore } from './users.js'
import type { AuthKitEvent } from './services/events.js'

export interface AuthKitOptions {
  secret: string | string[]
  database?: string | Kysely<any>
  migrate?: boolean
  prefix?: string
  users?: UserStore<any>
  registration?: boolean
  tokens?: {
    /** Seconds an access token lives. @default 300 */
    accessTokenExpiry?: number
    /** Seconds a refresh token lives. @default 86400 */
    refreshTokenExpiry?: number
    /** Seconds after a rotation in which the spent refresh token, shown again, gets 401 but revokes nothing (two tabs). @default 10 */
    refreshReuseGrace?: number
  }
  /** Password guessing at step 1 (rule 13). */
  login?: {
    /** Wrong passwords for one login from one client address within the window. @default 5 */
    maxFailuresPerClient?: number
    /** Wrong passwords from one client address, any logins, within the window. @default 100 */
    maxFailuresPerAddress?: number
    /** Seconds. @default 900 */
    failureWindow?: number
  }
  mfa?: {
    /** `true`, or a function of the user: users it covers must enrol a method before a normal session (SPEC section 9). @default false */
    required?: boolean | ((user: AuthKitUser) => boolean | Promise<boolean>)
    /** Days a remembered device skips the second step; 0 turns remembering off. @default 30 */
    trustedDeviceDays?: number
    /** Seconds: the default `maxAge` of `app.authKit.requireMfa()`. @default 900 */
    stepUpMaxAge?: number
    enabled?: boolean
    handlers?: MfaHandlerClass[]
    totpInterval?: number
    totpValidWindow?: number
    backupCodes?: { count?: number, length?: number, secureHash?: boolean }
    ephemeralTokenExpiry?: number
    emailCodeExpiry?: number
    resendCooldown?: number
    applicationName?: string
    maxAttemptsPerToken?: number
    lockoutThreshold?: number
    lockoutDuration?: number
    preventDeleteActiveMethod?: boolean
    preventDeletePrimaryMethod?: boolean
    deleteActiveMethodRequireCode?: boolean
    updatePrimaryMethodRequirePrimaryCode?: boolean
  }
  email?: EmailOptions
  /** Security notification mails (SPEC section 9). @default true when `email` is set */
  notifications?: boolean
  /**
   * The WebAuthn relying party of passkeys (SPEC section 10); required when
   * `PasskeyHandler` is in `mfa.handlers`. `rpID`: the domain credentials are
   * scoped to, the host of every origin or a parent domain of it (`example.com`).
   * `rpName`: the name authenticators show. `origins`: every origin a passkey
   * may be used from (`https://app.example.com`; `http:` only for `localhost`).
   */
  webauthn?: { rpID: string, rpName: string, origins: string[] | string }
  docs?: false | { routePrefix?: string }
  onEvent?: (event: AuthKitEvent) => void | Promise<void>
  now?: () => number
}

export interface ResolvedOptions {
  secrets: string[]
  database: string | Kysely<any>
  migrate: boolean
  prefix: string
  users?: UserStore<any>
  registration: boolean
  tokens: { accessTokenExpiry: number, refreshTokenExpiry: number, refreshReuseGrace: number }
  login: { maxFailuresPerClient: number, maxFailuresPerAddress: number, failureWindow: number }
  mfa: {
    required: (user: AuthKitUser) => boolean | Promise<boolean>
    trustedDeviceDays: number
    stepUpMaxAge: number
    enabled: boolean
    handlers: MfaHandlerClass[]
    totpInterval: number
    totpValidWindow: number
    backupCodes: { count: number, length: number, secureHash: boolean }
    ephemeralTokenExpiry: number
    emailCodeExpiry: number
    resendCooldown: number
    applicationName: string
    maxAttemptsPerToken: number
    lockoutThreshold: number
    lockoutDuration: number
    preventDeleteActiveMethod: boolean
    preventDeletePrimaryMethod: boolean
    deleteActiveMethodRequireCode: boolean
    updatePrimaryMethodRequirePrimaryCode: boolean
  }
  email?: EmailOptions & { from: string }
  notifications: boolean
  /** The relying party of passkeys, or null when the option is not set. */
  webauthn: WebAuthnSettings | null
  docs: false | { routePrefix: string }
  onEvent?: (event: AuthKitEvent) => void | Promise<void>
  now: () => number
}

export const HANDLER_NAME = /^[a-z][a-z0-9_]*$/

function positiveInt (option: string, value: unknown, fallback: number, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new AuthKitOptionsError(option, `must be a whole number from ${min} to ${max} (got ${String(value)})`)
  }
  return value
}

function bool (option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new AuthKitOptionsError(option, `must be true or false (got ${String(value)})`)
  return value
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
    throw new AuthKitOptionsError('mfa.required', `must be true, false or a function of the user (got ${String(value)})`)
  }
  if (!enabled || value === undefined || value === false) return () => false
  if (value === true) return () => true
  return value as ResolvedOptions['mfa']['required']
}

export function resolveOptions (raw: AuthKitOptions | undefined): ResolvedOptions {
  const o = (raw ?? {}) as AuthKitOptions
  const secrets = Array.isArray(o.secret) ? o.secret : [o.secret]
  if (secrets.length === 0 || secrets.some((s) => typeof s !== 'string' || s.length < 32)) {
    throw new AuthKitOptionsError('secret', 'is required: a string of at least 32 characters, or an array of them (newest first)')
  }
  const database = o.database ?? 'sqlite:auth-kit.db'
  if (typeof database !== 'string' && (typeof database !== 'object' || database === null || typeof (database as any).selectFrom !== 'function')) {
    throw new AuthKitOptionsError('database', 'must be a connection string or a Kysely instance')
  }
  const prefix = o.prefix ?? '/api/auth'
  if (typeof prefix !== 'string' || !prefix.startsWith('/')) throw new AuthKitOptionsError('prefix', 'must be a path starting with "/"')

  let email: ResolvedOptions['email']
  if (o.email !== undefined && o.email.transport !== undefined) {
    if (typeof o.email.from !== 'string' || o.email.from === '') throw new AuthKitOptionsError('email.from', 'is required with email.transport')
    if (o.email.template !== undefined && typeof o.email.template !== 'function') throw new AuthKitOptionsError('email.template', 'must be a function')
    if (o.email.notificationTemplate !== undefined && typeof o.email.notificationTemplate !== 'function') throw new AuthKitOptionsError('email.notificationTemplate', 'must be a function')
    email = { ...o.email, from: o.email.from, timeout: positiveInt('email.timeout', o.email.timeout, DEFAULT_DELIVERY_TIMEOUT, { max: 600 }) }
  }
  const m = o.mfa ?? {}
  const webauthn = resolveWebAuthn(o.webauthn)
  const handlers = checkHandlers(m.handlers ?? (email !== undefined ? [AppHandler, EmailHandler] : [AppHandler]), email !== undefined, webauthn !== null)

  let docs: ResolvedOptions['docs'] = { routePrefix: '/api/docs' }
  if (o.docs === false) docs = false
  else if (o.docs !== undefined) {
    const routePrefix = o.docs.routePrefix ?? '/api/docs'
    if (typeof routePrefix !== 'string' || !routePrefix.startsWith('/')) throw new AuthKitOptionsError('docs.routePrefix', 'must be a path starting with "/"')
    docs = { routePrefix }
  }
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function') throw new AuthKitOptionsError('onEvent', 'must be a function')
  if (o.now !== undefined && typeof o.now !== 'function') throw new AuthKitOptionsError('now', 'must be a function returning milliseconds')
  if (o.users !== undefined) {
    for (const fn of ['findByLogin', 'findById', 'verifyPassword', 'toPublic', 'emailOf'] as const) {
      if (typeof (o.users as any)[fn] !== 'function') throw new AuthKitOptionsError('users', `must implement ${fn}()`)
    }
  }
  const backup = m.backupCodes ?? {}
  const enabled = bool('mfa.enabled', m.enabled, true)
  const applicationName = m.applicationName ?? 'My App'
  if (typeof applicationName !== 'string' || applicationName === '' || applicationName.includes(':')) {
    throw new AuthKitOptionsError('mfa.applicationName', 'must be a non-empty string without ":"')
  }
  return {
    secrets,
    database,
    migrate: bool('migrate', o.migrate, true),
    prefix: prefix.replace(/\/+$/, ''),
    users: o.users,
    registration: bool('registration', o.registration, false),
    tokens: {
      accessTokenExpiry: positiveInt('tokens.accessTokenExpiry', o.tokens?.accessTokenExpiry, 300),
      refreshTokenExpiry: positiveInt('tokens.refreshTokenExpiry', o.tokens?.refreshTokenExpiry, 86400),
      refreshReuseGrace: positiveInt('tokens.refreshReuseGrace', o.tokens?.refreshReuseGrace, 10, { min: 0, max: 3600 }),
    },
    login: {
      maxFailuresPerClient: positiveInt('login.maxFailuresPerClient', o.login?.maxFailuresPerClient, 5),
      maxFailuresPerAddress: positiveInt('login.maxFailuresPerAddress', o.login?.maxFailuresPerAddress, 100),
      failureWindow: positiveInt('login.failureWindow', o.login?.failureWindow, 900),
    },
    mfa: {
      required: requiredPolicy(m.required, enabled),
      trustedDeviceDays: positiveInt('mfa.trustedDeviceDays', m.trustedDeviceDays, 30, { min: 0, max: 3650 }),
      stepUpMaxAge: positiveInt('mfa.stepUpMaxAge', m.stepUpMaxAge, 900),
      enabled,
      handlers,
      totpInterval: positiveInt('mfa.totpInterval', m.totpInterval, 30, { max: 3600 }),
      totpValidWindow: positiveInt('mfa.totpValidWindow', m.totpValidWindow, 1, { min: 0, max: 10 }),
      backupCodes: {
        count: positiveInt('mfa.backupCodes.count', backup.count, 10, { min: 0, max: 100 }),
        length: positiveInt('mfa.backupCodes.length', backup.length, 16, { min: 8, max: 64 }),
        secureHash: bool('mfa.backupCodes.secureHash', backup.secureHash, true),
      },
      ephemeralTokenExpiry: positiveInt('mfa.ephemeralTokenExpiry', m.ephemeralTokenExpiry, 600),
      emailCodeExpiry: positiveInt('mfa.emailCodeExpiry', m.emailCodeExpiry, 600),
      resendCooldown: positiveInt('mfa.resendCooldown', m.resendCooldown, 30, { min: 0 }),
      applicationName,
      maxAttemptsPerToken: positiveInt('mfa.maxAttemptsPerToken', m.maxAttemptsPerToken, 5),
      lockoutThreshold: positiveInt('mfa.lockoutThreshold', m.lockoutThreshold, 10),
      lockoutDuration: positiveInt('mfa.lockoutDuration', m.lockoutDuration, 900),
      preventDeleteActiveMethod: bool('mfa.preventDeleteActiveMethod', m.preventDeleteActiveMethod, false),
      preventDeletePrimaryMethod: bool('mfa.preventDeletePrimaryMethod', m.preventDeletePrimaryMethod, false),
      deleteActiveMethodRequireCode: bool('mfa.deleteActiveMethodRequireCode', m.deleteActiveMethodRequireCode, true),
      updatePrimaryMethodRequirePrimaryCode: bool('mfa.updatePrimaryMethodRequirePrimaryCode', m.updatePrimaryMethodRequirePrimaryCode, true),
    },
    email,
    notifications: bool('notifications', o.notifications, email !== undefined) && email !== undefined,
    webauthn,
    docs,
    onEvent: o.onEvent,
    now: o.now ?? Date.now,
  }
}

import createError from '@fastify/error'

const CODE_ALREADY_USED = 'This code, or a newer one, was already used. Wait for the next code and try again.'

// Every runtime error the plugin answers with, under one prefix: the one list
// of codes and statuses. The OpenAPI document's codes (ERROR_STATUSES, read by
// schemas/common.ts) are derived from it.
export const AuthKitErrors = {
  SameMethod: createError('AUTH_KIT_SAME_METHOD', 'The login attempt already uses this method.', 400),
  MethodNotDispatchable: createError('AUTH_KIT_METHOD_NOT_DISPATCHABLE', 'This method does not send codes.', 400),
  InvalidCredentials: createError('AUTH_KIT_INVALID_CREDENTIALS', 'Unable to log in with the provided credentials.', 401),
  InvalidEphemeralToken: createError('AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'The login attempt is invalid or has expired.', 401),
  InvalidCodeLogin: createError('AUTH_KIT_INVALID_CODE', 'Invalid code.', 401),
  // The code is right for a TOTP step that was already accepted (rule 3); same status and code as a wrong one.
  CodeAlreadyUsedLogin: createError('AUTH_KIT_INVALID_CODE', CODE_ALREADY_USED, 401),
  Unauthorized: createError('AUTH_KIT_UNAUTHORIZED', 'Authentication required.', 401),
  InvalidRefreshToken: createError('AUTH_KIT_INVALID_REFRESH_TOKEN', 'The refresh token is invalid, expired or revoked.', 401),
  StepUpRequired: createError('AUTH_KIT_STEP_UP_REQUIRED', 'This needs a second factor checked %s: send a code to POST /login/step-up/ and retry with the new access token.', 401),
  MfaSetupRequired: createError('AUTH_KIT_MFA_SETUP_REQUIRED', 'Set up a second factor first: this token only works on the MFA setup routes.', 403),
  InvalidCode: createError('AUTH_KIT_INVALID_CODE', 'Invalid code.', 403),
  CodeAlreadyUsed: createError('AUTH_KIT_INVALID_CODE', CODE_ALREADY_USED, 403),
  PrimaryMethodProtected: createError('AUTH_KIT_PRIMARY_METHOD_PROTECTED', 'The primary method cannot be %s.', 403),
  ActiveMethodProtected: createError('AUTH_KIT_ACTIVE_METHOD_PROTECTED', 'An active method cannot be deleted.', 403),
  MethodNotFound: createError('AUTH_KIT_METHOD_NOT_FOUND', 'Requested MFA method does not exist.', 404),
  MethodExists: createError('AUTH_KIT_METHOD_EXISTS', 'This method already exists.', 409),
  MethodAlreadyActive: createError('AUTH_KIT_METHOD_ALREADY_ACTIVE', 'This method is already active.', 409),
  UsernameTaken: createError('AUTH_KIT_USERNAME_TAKEN', 'That username or email is already registered.', 409),
  // Not a contract code of its own: the schema's length counts what was typed, NFKC can make more.
  IdentifierTooLong: createError('FST_ERR_VALIDATION', 'body/%s is longer than %d characters once normalized (NFKC)', 400),
  // The 429s say how long to wait in words (see retryLater); Retry-After says it in seconds.
  LoginThrottled: createError('AUTH_KIT_LOGIN_THROTTLED', 'Too many wrong passwords from this address. Try again in %s.', 429),
  TooManyAttempts: createError('AUTH_KIT_TOO_MANY_ATTEMPTS', 'Too many wrong codes. Try again in %s.', 429),
  ResendTooSoon: createError('AUTH_KIT_RESEND_TOO_SOON', 'A code was sent moments ago. Try again in %s.', 429),
  // A server fault whose own text (a database's, a user store's) stays in the log.
  Internal: createError('AUTH_KIT_INTERNAL_ERROR', 'Something went wrong on the server.', 500),
  DeliveryFailed: createError('AUTH_KIT_DELIVERY_FAILED', 'The code could not be delivered. Try again later.', 503),
  // Not a contract code: a user whose store gives no address cannot use a method that mails.
  NoEmailAddress: createError('AUTH_KIT_NO_EMAIL_ADDRESS', 'The account has no email address for this method.', 422),
} as const

type ErrorName = keyof typeof AuthKitErrors
/** Answered on the host's routes only: the plugin's own routes send a bare 500 for it, without a code. */
type Undocumented = 'Internal'
type AnsweredError = InstanceType<(typeof AuthKitErrors)[Exclude<ErrorName, Undocumented>]>

/** Every error code the routes answer with (SPEC section 4). */
export type ErrorCode = AnsweredError['code']

/**
 * Each code and the statuses it comes with (SPEC section 4), read from
 * AuthKitErrors, lowest status first and Fastify's own validation code first
 * among the 400s. A code with two statuses (AUTH_KIT_INVALID_CODE) is 401 at
 * login verify and 403 on the method routes and step-up.
 */
export const ERROR_STATUSES: Readonly<Record<ErrorCode, readonly number[]>> = (() => {
  const statuses = new Map<ErrorCode, number[]>()
  for (const name of Object.keys(AuthKitErrors) as ErrorName[]) {
    if (name === ('Internal' satisfies Undocumented)) continue
    const { code, statusCode } = new AuthKitErrors[name]() as AnsweredError
    const known = statuses.get(code) ?? []
    // Two errors may share a code and status (a wrong code and a used one): listed once.
    if (!known.includes(statusCode)) statuses.set(code, [...known, statusCode].sort((a, b) => a - b))
  }
  const rank = ([code, [status]]: [ErrorCode, number[]]): number => status * 2 + (code === 'FST_ERR_VALIDATION' ? 0 : 1)
  return Object.fromEntries([...statuses].sort((a, b) => rank(a) - rank(b))) as Record<ErrorCode, number[]>
})()

/** Every error code the routes answer with, in the order of ERROR_STATUSES. */
export const ERROR_CODES = Object.keys(ERROR_STATUSES) as ErrorCode[]

/**
 * A wait as a person reads it, rounded up so that coming back then is never
 * too early: `45 seconds` below two minutes, `15 minutes` below two hours,
 * then `3 hours` or `3 hours 20 minutes`.
 * @param seconds the wait in seconds (at least 1 is shown)
 */
export function waitInWords (seconds: number): string {
  const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`
  const whole = Math.max(1, Math.ceil(seconds))
  if (whole < 120) return plural(whole, 'second')
  const minutes = Math.ceil(whole / 60)
  if (minutes < 120) return plural(minutes, 'minute')
  const hours = Math.floor(minutes / 60)
  const rest = minutes % 60
  return rest === 0 ? plural(hours, 'hour') : `${plural(hours, 'hour')} ${plural(rest, 'minute')}`
}

/**
 * A 429 whose message says how long to wait (`Try again in 15 minutes.`) and
 * which carries the same wait in whole seconds for the `Retry-After` header
 * (RFC 9110 §10.2.3).
 * @param TooSoon one of the 429s above, whose message has one `%s` for the wait
 * @param seconds the wait in seconds; rounded up, at least 1
 */
export function retryLater<E extends Error> (TooSoon: new (wait: string) => E, seconds: number): E & { retryAfter: number } {
  const retryAfter = Math.max(1, Math.ceil(seconds))
  return Object.assign(new TooSoon(waitInWords(retryAfter)), { retryAfter })
}

/** Thrown at registration for a bad option; the message names the option. */
export class AuthKitOptionsError extends Error {
  constructor (option: string, problem: string) {
    super(`fastify-auth-kit: option "${option}" ${problem}`)
    this.name = 'AuthKitOptionsError'
  }
}

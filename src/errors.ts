import createError from '@fastify/error'

// Every runtime error the plugin answers with, under one prefix. The OpenAPI
// document lists these per route (see schemas/errors.ts).
export const AuthKitErrors = {
  SameMethod: createError('AUTH_KIT_SAME_METHOD', 'The login attempt already uses this method.', 400),
  MethodNotDispatchable: createError('AUTH_KIT_METHOD_NOT_DISPATCHABLE', 'This method does not send codes.', 400),
  InvalidCredentials: createError('AUTH_KIT_INVALID_CREDENTIALS', 'Unable to log in with the provided credentials.', 401),
  InvalidEphemeralToken: createError('AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'The login attempt is invalid or has expired.', 401),
  InvalidCodeLogin: createError('AUTH_KIT_INVALID_CODE', 'Invalid code.', 401),
  Unauthorized: createError('AUTH_KIT_UNAUTHORIZED', 'Authentication required.', 401),
  InvalidRefreshToken: createError('AUTH_KIT_INVALID_REFRESH_TOKEN', 'The refresh token is invalid, expired or revoked.', 401),
  StepUpRequired: createError('AUTH_KIT_STEP_UP_REQUIRED', 'This needs a second factor checked %s: send a code to POST /login/step-up/ and retry with the new access token.', 401),
  MfaSetupRequired: createError('AUTH_KIT_MFA_SETUP_REQUIRED', 'Set up a second factor first: this token only works on the MFA setup routes.', 403),
  InvalidCode: createError('AUTH_KIT_INVALID_CODE', 'Invalid code.', 403),
  PrimaryMethodProtected: createError('AUTH_KIT_PRIMARY_METHOD_PROTECTED', 'The primary method cannot be %s.', 403),
  ActiveMethodProtected: createError('AUTH_KIT_ACTIVE_METHOD_PROTECTED', 'An active method cannot be deleted.', 403),
  MethodNotFound: createError('AUTH_KIT_METHOD_NOT_FOUND', 'Requested MFA method does not exist.', 404),
  MethodExists: createError('AUTH_KIT_METHOD_EXISTS', 'This method already exists.', 409),
  MethodAlreadyActive: createError('AUTH_KIT_METHOD_ALREADY_ACTIVE', 'This method is already active.', 409),
  UsernameTaken: createError('AUTH_KIT_USERNAME_TAKEN', 'That username or email is already registered.', 409),
  // Not a contract code of its own: the schema's length counts what was typed, NFKC can make more.
  IdentifierTooLong: createError('FST_ERR_VALIDATION', 'body/%s is longer than %d characters once normalized (NFKC)', 400),
  LoginThrottled: createError('AUTH_KIT_LOGIN_THROTTLED', 'Too many wrong passwords from this address. Try again later.', 429),
  TooManyAttempts: createError('AUTH_KIT_TOO_MANY_ATTEMPTS', 'Too many wrong codes. Try again later.', 429),
  ResendTooSoon: createError('AUTH_KIT_RESEND_TOO_SOON', 'A code was sent moments ago. Try again later.', 429),
  // A server fault whose own text (a database's, a user store's) stays in the log.
  Internal: createError('AUTH_KIT_INTERNAL_ERROR', 'Something went wrong on the server.', 500),
  DeliveryFailed: createError('AUTH_KIT_DELIVERY_FAILED', 'The code could not be delivered. Try again later.', 503),
  // Not a contract code: a user whose store gives no address cannot use a method that mails.
  NoEmailAddress: createError('AUTH_KIT_NO_EMAIL_ADDRESS', 'The account has no email address for this method.', 422),
} as const

/** A 429 that carries how long to wait, for the Retry-After header. */
export function withRetryAfter<E extends Error> (err: E, seconds: number): E & { retryAfter: number } {
  return Object.assign(err, { retryAfter: Math.max(1, Math.ceil(seconds)) })
}

/** Thrown at registration for a bad option; the message names the option. */
export class AuthKitOptionsError extends Error {
  constructor (option: string, problem: string) {
    super(`fastify-auth-kit: option "${option}" ${problem}`)
    this.name = 'AuthKitOptionsError'
  }
}

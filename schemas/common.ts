import { Type, type TSchema } from '@sinclair/typebox'

/** Every error code the plugin answers with (SPEC section 4). */
export const ERROR_CODES = [
  'FST_ERR_VALIDATION',
  'AUTH_KIT_SAME_METHOD',
  'AUTH_KIT_METHOD_NOT_DISPATCHABLE',
  'AUTH_KIT_INVALID_CREDENTIALS',
  'AUTH_KIT_INVALID_EPHEMERAL_TOKEN',
  'AUTH_KIT_INVALID_CODE',
  'AUTH_KIT_UNAUTHORIZED',
  'AUTH_KIT_INVALID_REFRESH_TOKEN',
  'AUTH_KIT_STEP_UP_REQUIRED',
  'AUTH_KIT_MFA_SETUP_REQUIRED',
  'AUTH_KIT_PRIMARY_METHOD_PROTECTED',
  'AUTH_KIT_ACTIVE_METHOD_PROTECTED',
  'AUTH_KIT_METHOD_NOT_FOUND',
  'AUTH_KIT_METHOD_EXISTS',
  'AUTH_KIT_METHOD_ALREADY_ACTIVE',
  'AUTH_KIT_USERNAME_TAKEN',
  'AUTH_KIT_LOGIN_THROTTLED',
  'AUTH_KIT_TOO_MANY_ATTEMPTS',
  'AUTH_KIT_RESEND_TOO_SOON',
  'AUTH_KIT_DELIVERY_FAILED',
  'AUTH_KIT_NO_EMAIL_ADDRESS',
] as const

export type ErrorCode = typeof ERROR_CODES[number]

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ enum: [...ERROR_CODES] } as any),
  error: Type.String(),
  message: Type.String(),
}, { $id: 'AuthKitError', title: 'AuthKitError', description: 'Fastify\'s error envelope.' })

/** A documented error response that names the codes a route can give with this status. */
export function errorResponse (codes: ErrorCode[]): TSchema {
  return Type.Ref(ErrorResponse, { description: `Error codes: ${codes.join(', ')}.` })
}

export const PublicUser = Type.Object({
  id: Type.String(),
}, { $id: 'AuthKitUser', title: 'AuthKitUser', additionalProperties: true, description: 'The user store\'s public view (built-in: id, username, email).' })

export const TokenPair = Type.Object({
  access: Type.String({ description: 'JWT access token (Bearer).' }),
  refresh: Type.String({ description: 'Opaque refresh token; single use, rotated on refresh.' }),
  access_expiration: Type.String({ format: 'date-time' }),
  refresh_expiration: Type.String({ format: 'date-time' }),
}, { $id: 'AuthKitTokens', title: 'AuthKitTokens' })

export const Detail = Type.Object({ detail: Type.String() }, { $id: 'AuthKitDetail', title: 'AuthKitDetail' })

/** Free text a person types: bounded so no input is expensive to handle. */
export const CodeInput = Type.String({ minLength: 1, maxLength: 64, description: 'A code of the method, or a backup code where the route takes one.' })
export const EphemeralTokenInput = Type.String({ minLength: 1, maxLength: 256 })

/** The configured handlers' names: an unknown name is a 400 at validation. */
export function methodNameSchema (names: string[]): TSchema {
  return Type.Unsafe<string>({ $id: 'AuthKitMethodName', title: 'AuthKitMethodName', type: 'string', enum: names, description: 'A configured MFA method.' })
}

export function sharedSchemas (names: string[]): TSchema[] {
  return [ErrorResponse, PublicUser, TokenPair, Detail, methodNameSchema(names)]
}

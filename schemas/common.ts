import { Type, type Static, type StringOptions, type TObject, type TOptional, type TProperties, type TSchema, type TString, type TUnknown } from '@sinclair/typebox'
import { ERROR_CODES, ERROR_STATUSES, type ErrorCode } from '../src/errors.js'

/**
 * What a person sees in the documented examples: the words the routes really
 * answer with (src/errors.ts; test/openapi.test.ts holds the two together).
 */
const EXAMPLE_MESSAGES: Record<ErrorCode, string> = {
  FST_ERR_VALIDATION: 'body/code must be string',
  AUTH_KIT_SAME_METHOD: 'The login attempt already uses this method.',
  AUTH_KIT_METHOD_NOT_DISPATCHABLE: 'This method does not send codes.',
  AUTH_KIT_INVALID_CREDENTIALS: 'Unable to log in with the provided credentials.',
  AUTH_KIT_INVALID_EPHEMERAL_TOKEN: 'The login attempt is invalid or has expired.',
  AUTH_KIT_INVALID_CODE: 'Invalid code.',
  AUTH_KIT_UNAUTHORIZED: 'Authentication required.',
  AUTH_KIT_INVALID_REFRESH_TOKEN: 'The refresh token is invalid, expired or revoked.',
  AUTH_KIT_STEP_UP_REQUIRED: 'This needs a second factor checked at login: send a code to POST /login/step-up/ and retry with the new access token.',
  AUTH_KIT_MFA_SETUP_REQUIRED: 'Set up a second factor first: this token only works on the MFA setup routes.',
  AUTH_KIT_PRIMARY_METHOD_PROTECTED: 'The primary method cannot be deactivated.',
  AUTH_KIT_ACTIVE_METHOD_PROTECTED: 'An active method cannot be deleted.',
  AUTH_KIT_METHOD_NOT_FOUND: 'Requested MFA method does not exist.',
  AUTH_KIT_METHOD_EXISTS: 'This method already exists.',
  AUTH_KIT_METHOD_ALREADY_ACTIVE: 'This method is already active.',
  AUTH_KIT_USERNAME_TAKEN: 'That username or email is already registered.',
  AUTH_KIT_NO_EMAIL_ADDRESS: 'The account has no email address for this method.',
  AUTH_KIT_LOGIN_THROTTLED: 'Too many wrong passwords from this address. Try again in 15 minutes.',
  AUTH_KIT_TOO_MANY_ATTEMPTS: 'Too many wrong codes. Try again in 15 minutes.',
  AUTH_KIT_RESEND_TOO_SOON: 'A code was sent moments ago. Try again in 30 seconds.',
  AUTH_KIT_DELIVERY_FAILED: 'The code could not be delivered. Try again later.',
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict',
  422: 'Unprocessable Entity', 429: 'Too Many Requests', 503: 'Service Unavailable',
}

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ description: 'The HTTP status, repeated.' }),
  code: Type.String({ enum: [...ERROR_CODES], description: 'What went wrong, for a program to branch on (SPEC section 4).' } as StringOptions),
  error: Type.String({ description: 'The HTTP status text.' }),
  message: Type.String({ description: 'What went wrong, for a person.' }),
}, {
  $id: 'AuthKitError',
  title: 'AuthKitError',
  description: 'Fastify\'s error envelope.',
  examples: [{ statusCode: 401, code: 'AUTH_KIT_UNAUTHORIZED', error: 'Unauthorized', message: 'Authentication required.' }],
})

/** One documented error answer: its own status and code, as the route gives it; `message` replaces the usual words. */
export function errorExample (status: number, code: ErrorCode, message: string = EXAMPLE_MESSAGES[code]): { statusCode: number, code: ErrorCode, error: string, message: string } {
  return { statusCode: status, code, error: STATUS_TEXT[status] ?? 'Error', message }
}

/**
 * The documented error responses of a route: for each status, the codes it can
 * give, each with an example of its own status and code. A code listed under a
 * status SPEC section 4 does not give it is a mistake in the route's schema, and
 * throws when the schema is built. `validation`: the message of the
 * `FST_ERR_VALIDATION` example, for a route whose bad input is not a body
 * (the usual one names `body/code`).
 */
export function errorResponses (
  byStatus: Partial<Record<400 | 401 | 403 | 404 | 409 | 422 | 429 | 503, ErrorCode[]>>,
  { validation }: { validation?: string } = {},
): Record<number, TSchema> {
  const responses: Record<number, TSchema> = {}
  for (const [key, codes] of Object.entries(byStatus)) {
    const status = Number(key)
    for (const code of codes) {
      if (!ERROR_STATUSES[code].includes(status)) throw new Error(`fastify-auth-kit schemas: ${code} is never answered with ${status}`)
    }
    const examples = Object.fromEntries(codes.map((code) => [code, { summary: code, value: errorExample(status, code, code === 'FST_ERR_VALIDATION' ? validation : undefined) }]))
    // The envelope, narrowed to this status and these codes; the examples are
    // what Swagger UI shows (a bare $ref would lose them and show statusCode 0).
    responses[status] = Type.Unsafe({
      allOf: [
        Type.Ref(ErrorResponse),
        { type: 'object', properties: { statusCode: { type: 'integer', enum: [status] }, code: { type: 'string', enum: codes } } },
      ],
      description: `Error codes: ${codes.join(', ')}.`,
      'x-examples': examples,
    })
  }
  return responses
}

/**
 * A response of a shared (named) shape, with its own description and example:
 * a bare `$ref` would lose both in the document.
 */
export function namedResponse (schema: TSchema, description: string, example: unknown): TSchema {
  return Type.Unsafe({ allOf: [Type.Ref(schema)], description, examples: [example] })
}

/** A 204: no body. Typed as nothing, so a route answers it with a bare `send()`. */
export function noContent (description: string) {
  return Type.Unsafe<void>(Type.Null({ description }))
}

/**
 * Characters no supported database stores as given: U+0000 (PostgreSQL text
 * refuses it) and UTF-16 surrogates that are not part of a pair (no UTF-8 form,
 * so a driver would change them). Ajv compiles patterns with the `u` flag, where
 * an emoji is one code point outside that range and passes.
 */
const UNSTORABLE = '\\u0000\\uD800-\\uDFFF'

/**
 * A request string field: bounded, and refusing what no supported database
 * can store. Every string a request carries is made here, so none forgets it.
 * `refuse` adds characters to refuse, as the body of a regular-expression
 * class (e.g. `\\s`).
 */
export function TextInput (options: StringOptions & { maxLength: number, refuse?: string }): TString {
  const { refuse = '', ...rest } = options
  const least = refuse === '' ? '*' : '+'
  return Type.String({ minLength: 1, ...rest, pattern: `^[^${UNSTORABLE}${refuse}]${least}$` })
}

export const EXAMPLE_USER = { id: '0b6e1f8a-3c2d-4e5f-8a9b-1c2d3e4f5a6b', username: 'alice', email: 'alice@example.com' }
export const EXAMPLE_ACCESS = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwYjZlMWY4YSIsImFtciI6WyJwd2QiLCJtZmEiXX0.c2lnbmF0dXJl'
export const EXAMPLE_REFRESH = 'q7w8XxZfK2mB1r9uT0aLc3dE5gH6jN4pS8vY2zA0bC1'
export const EXAMPLE_EXPIRATION = '2026-11-30T09:05:00.000Z'
export const EXAMPLE_REFRESH_EXPIRATION = '2026-12-01T09:00:00.000Z'

export const PublicUser = Type.Object({
  id: Type.String({ description: 'The user\'s id, as a string.' }),
  username: Type.Optional(Type.String({ description: 'Built-in store: the name the user registered with.' })),
  email: Type.Optional(Type.String({ description: 'Built-in store: the address the user registered with.' })),
}, {
  $id: 'AuthKitUser',
  title: 'AuthKitUser',
  additionalProperties: true,
  description: 'The user store\'s public view. The built-in store gives id, username and email; a store of the host\'s own may add fields.',
  examples: [EXAMPLE_USER],
})
/** The user as the routes show it: what the user store's `toPublic` gives. */
export type PublicUser = Static<typeof PublicUser>

export const TokenPair = Type.Object({
  access: Type.String({ description: 'JWT access token: send it as `Authorization: Bearer <access>` (the Authorize button).' }),
  refresh: Type.String({ description: 'Opaque refresh token for POST /token/refresh/; single use, rotated on refresh.' }),
  access_expiration: Type.String({ format: 'date-time' }),
  refresh_expiration: Type.String({ format: 'date-time' }),
}, {
  $id: 'AuthKitTokens',
  title: 'AuthKitTokens',
  description: 'A new access token and refresh token.',
  examples: [{ access: EXAMPLE_ACCESS, refresh: EXAMPLE_REFRESH, access_expiration: EXAMPLE_EXPIRATION, refresh_expiration: EXAMPLE_REFRESH_EXPIRATION }],
})
/** A new session's tokens: what a finished login and a refresh answer. */
export type TokenPair = Static<typeof TokenPair>

export const Detail = Type.Object({ detail: Type.String() }, { $id: 'AuthKitDetail', title: 'AuthKitDetail', description: 'Done; `detail` says what happened.' })

/** A code as a person types it: spaces and dashes are ignored by the routes (SPEC rule 3). */
export const CodeInput = TextInput({ maxLength: 64, description: 'A code of the method (6 digits), or a backup code where the route takes one.', examples: ['123456'] })
export const EphemeralTokenInput = TextInput({ maxLength: 256, description: 'The `ephemeral_token` POST /login/ answered.' })
export const RefreshTokenInput = TextInput({ maxLength: 512, description: 'A refresh token from POST /login/verify/ (or a one-step POST /login/, or the last refresh).' })
export const DeviceTokenInput = TextInput({ maxLength: 256, description: 'The `device_token` a POST /login/verify/ with `remember_device: true` answered.' })
/** The id of a session or a device, as GET /sessions/ and GET /devices/ list it. */
export const RecordIdInput = TextInput({ maxLength: 128, description: 'An `id` from the list.' })

/**
 * The fields challenge–response methods (passkeys, SPEC section 10) add to
 * the routes, as the configured handlers declare them; a field no handler
 * declares is never added, so the document shows none of it.
 */
export interface ChallengeResponseFields {
  /** `challenge` in the answers of login step 1, change-method and resend. */
  challenge?: TSchema
  /** `challenge` in the answer of `POST /mfa/send/`. */
  sendChallenge?: TSchema
  /** `credential` at login verify, step-up and the method routes that take a code. */
  credential?: TSchema
  /** `credential` at `POST /mfa/confirm/`. */
  setupCredential?: TSchema
}

/**
 * A request body that also takes `credential` where it takes the code
 * `field`: one of the two when `required`, at most one otherwise, so a body
 * with both is a 400 like any body that misses the schema.
 */
export function withCredential<P extends TProperties, F extends keyof P & string> (body: TObject<P>, credential: TSchema, field: F, required: boolean, note: string): WithCredential<P, F> {
  const properties: Record<string, TSchema> = { ...body.properties }
  properties[field] = Type.Optional(properties[field])
  properties.credential = Type.Optional(Type.Unsafe({ ...credential, description: joined(note, credential.description) }))
  const either = required
    ? { oneOf: [{ required: [field] }, { required: ['credential'] }] }
    : { not: { required: [field, 'credential'] } }
  return Type.Object(properties, { additionalProperties: false, examples: body.examples, ...either }) as unknown as WithCredential<P, F>
}

/**
 * The type of a body that takes `credential` beside its code `field`: both
 * optional (the schema's `oneOf`/`not` says which may come), `credential`
 * unknown (each challenge–response handler has its own shape).
 */
export type WithCredential<P extends TProperties, F extends keyof P & string> =
  TObject<Omit<P, F | 'credential'> & { [K in F]: TOptional<P[K]> } & { credential: TOptional<TUnknown> }>

/** The type of an answer that may carry a challenge–response method's `challenge` (its shape the handler's own). */
export type WithChallenge<P extends TProperties> = TObject<Omit<P, 'challenge'> & { challenge: TOptional<TUnknown> }>

/** An answer that may also carry the `challenge` of a challenge–response method. */
export function withChallenge<P extends TProperties> (answer: TObject<P>, challenge: TSchema, note: string): WithChallenge<P> {
  const { properties, required: _required, type: _type, ...options } = answer as TObject & Record<string, unknown>
  return Type.Object({ ...properties, challenge: Type.Optional(Type.Unsafe({ ...challenge, description: joined(note, challenge.description) })) }, options) as unknown as WithChallenge<P>
}

function joined (...parts: unknown[]): string {
  return parts.filter((part) => typeof part === 'string' && part !== '').join(' ')
}

/** The configured handlers' names: an unknown name is a 400 at validation. */
export function methodNameSchema (names: string[]): TSchema {
  return Type.Unsafe<string>({ $id: 'AuthKitMethodName', title: 'AuthKitMethodName', type: 'string', enum: names, description: 'A configured MFA method.' })
}

export function sharedSchemas (names: string[]): TSchema[] {
  return [ErrorResponse, PublicUser, TokenPair, Detail, methodNameSchema(names)]
}

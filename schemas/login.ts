import { Type, type TSchema } from '@sinclair/typebox'
import { CodeInput, Detail, EphemeralTokenInput, PublicUser, TokenPair, errorResponse } from './common.js'

const MethodName = Type.Unsafe<string>({ $ref: 'AuthKitMethodName#' })
const strict = { additionalProperties: false }

const TokensWithUser = Type.Composite([TokenPair, Type.Object({ user: Type.Ref(PublicUser) })])

export const LoginMfaStarted = Type.Object({
  mfa_enabled: Type.Literal(true),
  ephemeral_token: Type.String({ description: 'Identifies this login attempt at step 2. Single use.' }),
  method: Type.String({ description: 'The primary method: the one the attempt starts with.' }),
  methods: Type.Array(Type.String(), { description: 'Every active method, in handler order.' }),
}, { $id: 'AuthKitLoginMfaStarted', title: 'AuthKitLoginMfaStarted' })

export const LoginDone = Type.Composite([Type.Object({ mfa_enabled: Type.Literal(false) }), TokensWithUser], { $id: 'AuthKitLoginDone', title: 'AuthKitLoginDone' })

export const LoginSetupRequired = Type.Object({
  mfa_enabled: Type.Literal(false),
  mfa_setup_required: Type.Literal(true),
  access: Type.String({ description: 'A setup-only access token: works on the MFA setup routes and nowhere else.' }),
  access_expiration: Type.String({ format: 'date-time' }),
  user: Type.Ref(PublicUser),
}, { $id: 'AuthKitLoginSetupRequired', title: 'AuthKitLoginSetupRequired' })

export const loginSchemas = [LoginMfaStarted, LoginDone, LoginSetupRequired]

const noStoreNote = 'Answers send Cache-Control: no-store.'

export const loginRoutes = {
  login: {
    tags: ['login'],
    summary: 'Log in, step 1: username and password',
    description: `Users with an active MFA method get an ephemeral token for step 2 (a code is sent if the primary method sends codes); others get tokens at once. ${noStoreNote}`,
    body: Type.Object({ username: Type.String({ minLength: 1, maxLength: 320 }), password: Type.String({ minLength: 1, maxLength: 1024 }), device_token: Type.Optional(Type.String({ maxLength: 256 })) }, strict),
    response: {
      200: Type.Unsafe({ oneOf: [Type.Ref(LoginMfaStarted), Type.Ref(LoginDone), Type.Ref(LoginSetupRequired)] }),
      400: errorResponse(['FST_ERR_VALIDATION']),
      401: errorResponse(['AUTH_KIT_INVALID_CREDENTIALS']),
      422: errorResponse(['AUTH_KIT_NO_EMAIL_ADDRESS']),
      429: errorResponse(['AUTH_KIT_LOGIN_THROTTLED']),
      503: errorResponse(['AUTH_KIT_DELIVERY_FAILED']),
    },
  },
  verify: {
    tags: ['login'],
    summary: 'Log in, step 2: a code',
    description: 'A code of the attempt\'s method, or a backup code of any active method. The ephemeral token works once.',
    body: Type.Object({ ephemeral_token: EphemeralTokenInput, code: CodeInput, remember_device: Type.Optional(Type.Boolean()) }, strict),
    response: {
      200: Type.Composite([TokensWithUser, Type.Object({ device_token: Type.Optional(Type.String()), device_expiration: Type.Optional(Type.String({ format: 'date-time' })) })]),
      400: errorResponse(['FST_ERR_VALIDATION']),
      401: errorResponse(['AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'AUTH_KIT_INVALID_CODE']),
      429: errorResponse(['AUTH_KIT_TOO_MANY_ATTEMPTS']),
    },
  },
  changeMethod: {
    tags: ['login'],
    summary: 'Switch the login attempt to another active method',
    body: Type.Object({ ephemeral_token: EphemeralTokenInput, new_method: MethodName }, strict),
    response: {
      200: Type.Object({ ephemeral_token: Type.String(), method: Type.String() }),
      400: errorResponse(['FST_ERR_VALIDATION', 'AUTH_KIT_SAME_METHOD']),
      401: errorResponse(['AUTH_KIT_INVALID_EPHEMERAL_TOKEN']),
      404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
      422: errorResponse(['AUTH_KIT_NO_EMAIL_ADDRESS']),
      503: errorResponse(['AUTH_KIT_DELIVERY_FAILED']),
    },
  },
  resend: {
    tags: ['login'],
    summary: 'Send a new code for the login attempt\'s method',
    body: Type.Object({ ephemeral_token: EphemeralTokenInput }, strict),
    response: {
      200: Type.Object({ ephemeral_token: Type.String(), detail: Type.String() }),
      400: errorResponse(['FST_ERR_VALIDATION', 'AUTH_KIT_METHOD_NOT_DISPATCHABLE']),
      401: errorResponse(['AUTH_KIT_INVALID_EPHEMERAL_TOKEN']),
      429: errorResponse(['AUTH_KIT_RESEND_TOO_SOON']),
      422: errorResponse(['AUTH_KIT_NO_EMAIL_ADDRESS']),
      503: errorResponse(['AUTH_KIT_DELIVERY_FAILED']),
    },
  },
  refresh: {
    tags: ['login'],
    summary: 'New tokens for a refresh token (which stops working)',
    body: Type.Object({ refresh: Type.String({ minLength: 1, maxLength: 512 }) }, strict),
    response: {
      200: Type.Ref(TokenPair),
      400: errorResponse(['FST_ERR_VALIDATION']),
      401: errorResponse(['AUTH_KIT_INVALID_REFRESH_TOKEN']),
    },
  },
  logout: {
    tags: ['login'],
    summary: 'Revoke a refresh token of the caller',
    security: [{ bearerAuth: [] }],
    body: Type.Object({ refresh: Type.String({ minLength: 1, maxLength: 512 }) }, strict),
    response: {
      204: Type.Null({ description: 'Logged out.' }),
      400: errorResponse(['FST_ERR_VALIDATION']),
      401: errorResponse(['AUTH_KIT_UNAUTHORIZED']),
    },
  },
  user: {
    tags: ['login'],
    summary: 'The logged-in user',
    security: [{ bearerAuth: [] }],
    response: {
      200: Type.Object({ user: Type.Ref(PublicUser) }),
      401: errorResponse(['AUTH_KIT_UNAUTHORIZED']),
    },
  },
  stepUp: {
    tags: ['login'],
    summary: 'Step-up: a fresh second factor for this session',
    security: [{ bearerAuth: [] }],
    body: Type.Object({ code: CodeInput, method: Type.Optional(MethodName) }, strict),
    response: {
      200: Type.Object({ access: Type.String(), access_expiration: Type.String({ format: 'date-time' }) }),
      400: errorResponse(['FST_ERR_VALIDATION']),
      401: errorResponse(['AUTH_KIT_UNAUTHORIZED']),
      403: errorResponse(['AUTH_KIT_INVALID_CODE', 'AUTH_KIT_MFA_SETUP_REQUIRED']),
      404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
      429: errorResponse(['AUTH_KIT_TOO_MANY_ATTEMPTS']),
    },
  },
  sessions: {
    tags: ['sessions and devices'],
    summary: 'The user\'s live sessions',
    security: [{ bearerAuth: [] }],
    response: {
      200: Type.Array(Type.Object({ id: Type.String(), created_at: Type.String(), last_used_at: Type.String(), expires_at: Type.String(), amr: Type.Array(Type.String()), current: Type.Boolean() })),
      401: errorResponse(['AUTH_KIT_UNAUTHORIZED']),
    },
  },
  revokeSession: {
    tags: ['sessions and devices'],
    summary: 'End one session',
    security: [{ bearerAuth: [] }],
    body: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, strict),
    response: { 204: Type.Null({ description: 'Done.' }), 400: errorResponse(['FST_ERR_VALIDATION']), 401: errorResponse(['AUTH_KIT_UNAUTHORIZED']) },
  },
  revokeOtherSessions: {
    tags: ['sessions and devices'],
    summary: 'End every other session',
    security: [{ bearerAuth: [] }],
    response: { 204: Type.Null({ description: 'Done.' }), 401: errorResponse(['AUTH_KIT_UNAUTHORIZED']) },
  },
  devices: {
    tags: ['sessions and devices'],
    summary: 'The user\'s remembered devices',
    security: [{ bearerAuth: [] }],
    response: {
      200: Type.Array(Type.Object({ id: Type.String(), label: Type.String(), created_at: Type.String(), last_used_at: Type.String(), expires_at: Type.String(), current: Type.Boolean() })),
      401: errorResponse(['AUTH_KIT_UNAUTHORIZED']),
    },
  },
  revokeDevice: {
    tags: ['sessions and devices'],
    summary: 'Forget one remembered device',
    security: [{ bearerAuth: [] }],
    body: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, strict),
    response: { 204: Type.Null({ description: 'Done.' }), 400: errorResponse(['FST_ERR_VALIDATION']), 401: errorResponse(['AUTH_KIT_UNAUTHORIZED']) },
  },
  registration: {
    tags: ['login'],
    summary: 'Create an account (built-in user store)',
    body: Type.Object({
      username: Type.String({ minLength: 1, maxLength: 150, pattern: '^\\S+$' }),
      email: Type.String({ format: 'email', maxLength: 320 }),
      password: Type.String({ minLength: 8, maxLength: 1024 }),
    }, strict),
    response: {
      201: Type.Object({ user: Type.Ref(PublicUser) }),
      400: errorResponse(['FST_ERR_VALIDATION']),
      409: errorResponse(['AUTH_KIT_USERNAME_TAKEN']),
    },
  },
} satisfies Record<string, Record<string, unknown>>

export type DetailSchema = typeof Detail
export type { TSchema }

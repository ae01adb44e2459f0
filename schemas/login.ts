import { Type, type Static, type TSchema } from '@sinclair/typebox'
import {
  type ChallengeResponseFields, CodeInput, Detail, DeviceTokenInput, EphemeralTokenInput, EXAMPLE_ACCESS, EXAMPLE_EXPIRATION, EXAMPLE_REFRESH,
  EXAMPLE_REFRESH_EXPIRATION, EXAMPLE_USER, PublicUser, RecordIdInput, RefreshTokenInput, TextInput, TokenPair, errorResponses, namedResponse, noContent,
  type WithChallenge, withChallenge, withCredential,
} from './common.js'

const MethodName = Type.Unsafe<string>({ $ref: 'AuthKitMethodName#' })
const strict = { additionalProperties: false }
const bearer = [{ bearerAuth: [] }]
const noStore = 'Sent with `Cache-Control: no-store`.'

/**
 * Request examples work as-is in Swagger UI's "Try it out" on the demo
 * (`npm start`): alice registers with this password, then logs in with it.
 */
export const EXAMPLE_PASSWORD = 'correct horse battery staple'
const EXAMPLE_EPHEMERAL = 'paste the ephemeral_token of POST /login/'
const EXAMPLE_DEVICE_TOKEN = 'Yx2VbN8qL0sT4kE7wR1mZ9cH3fJ6pD5aG2uI8oK0nQ3'
const EXAMPLE_DEVICE_EXPIRATION = '2026-12-30T09:00:00.000Z'

const tokensExample = { access: EXAMPLE_ACCESS, refresh: EXAMPLE_REFRESH, access_expiration: EXAMPLE_EXPIRATION, refresh_expiration: EXAMPLE_REFRESH_EXPIRATION }

const TokensWithUser = Type.Composite([TokenPair, Type.Object({ user: Type.Ref(PublicUser) })])

export const LoginMfaStarted = Type.Object({
  mfa_enabled: Type.Literal(true),
  ephemeral_token: Type.String({ description: 'Identifies this login attempt at step 2 (POST /login/verify/). Single use.' }),
  method: Type.String({ description: 'The primary method: the one the attempt starts with.' }),
  methods: Type.Array(Type.String(), { description: 'Every active method, in handler order (for POST /login/change-method/).' }),
}, {
  $id: 'AuthKitLoginMfaStarted',
  title: 'AuthKitLoginMfaStarted',
  description: 'The user has an active method: step 2 follows, at POST /login/verify/.',
  examples: [{ mfa_enabled: true, ephemeral_token: 'kP3vX9sQ2mT7bW1nR5yH8cJ4fL6dG0aE', method: 'app', methods: ['app', 'email'] }],
})

/** What a challenge–response method's `challenge` is for, in the answers of the login routes. */
const LOGIN_CHALLENGE = 'Only when the attempt\'s method is a challenge–response one (a passkey): answer it and send the result as `credential` to POST /login/verify/.'

/** `LoginMfaStarted` with the `challenge` a configured challenge–response method adds. */
export function loginMfaStarted (challenge?: TSchema): typeof LoginMfaStarted {
  return challenge === undefined ? LoginMfaStarted : withChallenge(LoginMfaStarted, challenge, LOGIN_CHALLENGE) as unknown as typeof LoginMfaStarted
}

export const LoginDone = Type.Composite([Type.Object({ mfa_enabled: Type.Literal(false) }), TokensWithUser], {
  $id: 'AuthKitLoginDone',
  title: 'AuthKitLoginDone',
  description: 'The user has no active method (or sent a remembered device\'s token): logged in, in one step.',
  examples: [{ mfa_enabled: false, ...tokensExample, user: EXAMPLE_USER }],
})

export const LoginSetupRequired = Type.Object({
  mfa_enabled: Type.Literal(false),
  mfa_setup_required: Type.Literal(true),
  access: Type.String({ description: 'A setup-only access token: it works on GET /user/, the method setup routes and POST /logout/, nowhere else.' }),
  access_expiration: Type.String({ format: 'date-time' }),
  user: Type.Ref(PublicUser),
}, {
  $id: 'AuthKitLoginSetupRequired',
  title: 'AuthKitLoginSetupRequired',
  description: 'MFA is required for this user, who has no active method yet: set one up (POST /mfa/, then POST /mfa/confirm/, which answers a full session).',
  examples: [{ mfa_enabled: false, mfa_setup_required: true, access: EXAMPLE_ACCESS, access_expiration: EXAMPLE_EXPIRATION, user: EXAMPLE_USER }],
})

export const Session = Type.Object({
  id: Type.String(),
  created_at: Type.String({ format: 'date-time', description: 'When the login that started it finished.' }),
  last_used_at: Type.String({ format: 'date-time', description: 'The last refresh (the creation time until the first).' }),
  expires_at: Type.String({ format: 'date-time', description: 'When its refresh token expires.' }),
  amr: Type.Array(Type.String(), { description: '["pwd"], or ["pwd", "mfa"] after a second factor.' }),
  current: Type.Boolean({ description: 'The session of the access token that asked.' }),
}, { $id: 'AuthKitSession', title: 'AuthKitSession', description: 'A live session: one refresh-token chain.' })

export const Device = Type.Object({
  id: Type.String(),
  label: Type.String({ description: 'Browser and system, from the User-Agent of the login that remembered it.' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.String({ format: 'date-time', description: 'The last login it skipped the second step of (the creation time until then).' }),
  expires_at: Type.String({ format: 'date-time' }),
  current: Type.Boolean({ description: 'The device the asking session logged in from.' }),
}, { $id: 'AuthKitDevice', title: 'AuthKitDevice', description: 'A remembered device: it skips the second step until it expires.' })

/** The shared login schemas, `LoginMfaStarted` with the configured methods' `challenge`. */
export function loginComponentSchemas (fields: ChallengeResponseFields = {}): TSchema[] {
  return [loginMfaStarted(fields.challenge), LoginDone, LoginSetupRequired, Session, Device]
}

export const loginSchemas = loginComponentSchemas()

const sessionExample = { id: '5d1f7c2a-9b3e-4a6d-8c0f-2e4b6a8c0d1e', created_at: '2026-11-30T08:55:00.000Z', last_used_at: '2026-11-30T09:00:00.000Z', expires_at: EXAMPLE_REFRESH_EXPIRATION, amr: ['pwd', 'mfa'], current: true }
const deviceExample = { id: '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d', label: 'Chrome on Linux', created_at: '2026-11-30T08:55:00.000Z', last_used_at: '2026-11-30T08:55:00.000Z', expires_at: EXAMPLE_DEVICE_EXPIRATION, current: true }


/** Route schemas of SPEC section 3, "Login", and the sessions and devices routes. */
export const loginRouteSchemas = {
  registration: {
    tags: ['login'],
    operationId: 'register',
    summary: 'Create an account (built-in user store)',
    description: 'Start here. Usernames and emails are compared without regard to case; a username never equals another account\'s email. The password needs at least 8 characters.',
    body: Type.Object({
      username: TextInput({ maxLength: 150, refuse: '\\s', description: 'No white space; `@` is allowed.' }),
      email: TextInput({ format: 'email', maxLength: 320 }),
      password: TextInput({ minLength: 8, maxLength: 1024 }),
    }, { ...strict, examples: [{ username: 'alice', email: 'alice@example.com', password: EXAMPLE_PASSWORD }] }),
    response: {
      201: Type.Object({ user: Type.Ref(PublicUser) }, { description: 'The account exists; log in with POST /login/.', examples: [{ user: EXAMPLE_USER }] }),
      ...errorResponses({ 400: ['FST_ERR_VALIDATION'], 409: ['AUTH_KIT_USERNAME_TAKEN'] }),
    },
  },
  login: {
    tags: ['login'],
    operationId: 'login',
    summary: 'Log in, step 1: username and password',
    description: 'A user with an active MFA method gets `mfa_enabled: true` and an `ephemeral_token` for step 2 (POST /login/verify/); '
      + 'a code is sent if the primary method sends codes. A user without one gets tokens at once (`mfa_enabled: false`): '
      + 'copy `access` into **Authorize**. With a remembered device\'s `device_token`, the second step is skipped. '
      + 'A user who must set MFA up first gets a setup-only token (`mfa_setup_required: true`). '
      + `Too many wrong passwords from one client: 429 with Retry-After. ${noStore}`,
    body: Type.Object({
      username: TextInput({ maxLength: 320, description: 'Username or email.' }),
      password: TextInput({ maxLength: 1024 }),
      device_token: Type.Optional(DeviceTokenInput),
    }, { ...strict, examples: [{ username: 'alice', password: EXAMPLE_PASSWORD }] }),
    response: {
      200: Type.Unsafe({
        oneOf: [Type.Ref(LoginMfaStarted), Type.Ref(LoginDone), Type.Ref(LoginSetupRequired)],
        description: 'Step 2 follows (`mfa_enabled: true`), or logged in (`mfa_enabled: false`), or logged in only to set MFA up (`mfa_setup_required: true`).',
        'x-examples': {
          'MFA: step 2 follows': { value: LoginMfaStarted.examples[0] },
          'No MFA yet: logged in': { value: LoginDone.examples[0] },
          'MFA required, not set up: setup-only token': { value: LoginSetupRequired.examples[0] },
        },
      }),
      ...errorResponses({
        400: ['FST_ERR_VALIDATION'],
        401: ['AUTH_KIT_INVALID_CREDENTIALS'],
        422: ['AUTH_KIT_NO_EMAIL_ADDRESS'],
        429: ['AUTH_KIT_LOGIN_THROTTLED'],
        503: ['AUTH_KIT_DELIVERY_FAILED'],
      }),
    },
  },
  verify: {
    tags: ['login'],
    operationId: 'loginVerify',
    summary: 'Log in, step 2: a code',
    description: 'A code of the attempt\'s method (the authenticator app\'s 6 digits, or the code mailed: on the demo, see /dev/outbox), '
      + 'or a backup code of any active method. The ephemeral token works once. '
      + '`remember_device: true` adds a `device_token` that skips this step at the next logins. '
      + `Copy \`access\` into **Authorize**. ${noStore}`,
    body: Type.Object({
      ephemeral_token: EphemeralTokenInput,
      code: CodeInput,
      remember_device: Type.Optional(Type.Boolean({ description: 'Remember this device: the next logins with its `device_token` skip this step.' })),
    }, { ...strict, examples: [{ ephemeral_token: EXAMPLE_EPHEMERAL, code: '123456' }] }),
    response: {
      200: Type.Composite([TokensWithUser, Type.Object({
        device_token: Type.Optional(Type.String({ description: 'With remember_device: send it as `device_token` to POST /login/. Shown once.' })),
        device_expiration: Type.Optional(Type.String({ format: 'date-time' })),
      })], {
        description: 'Logged in.',
        examples: [{ ...tokensExample, user: EXAMPLE_USER, device_token: EXAMPLE_DEVICE_TOKEN, device_expiration: EXAMPLE_DEVICE_EXPIRATION }],
      }),
      ...errorResponses({
        400: ['FST_ERR_VALIDATION'],
        401: ['AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'AUTH_KIT_INVALID_CODE'],
        429: ['AUTH_KIT_TOO_MANY_ATTEMPTS'],
      }),
    },
  },
  changeMethod: {
    tags: ['login'],
    operationId: 'loginChangeMethod',
    summary: 'Log in, step 2: switch to another active method',
    description: 'The same ephemeral token, now bound to `new_method` (one of `methods` of POST /login/); a code is sent if it sends codes, '
      + 'unless one went out within the resend cooldown: then none is sent, the latest code still works, and `detail` says so.',
    body: Type.Object({ ephemeral_token: EphemeralTokenInput, new_method: MethodName }, { ...strict, examples: [{ ephemeral_token: EXAMPLE_EPHEMERAL, new_method: 'email' }] }),
    response: {
      200: Type.Object({
        ephemeral_token: Type.String(),
        method: Type.String(),
        detail: Type.Optional(Type.String({
          description: 'Set when there is something to say: a method that sends codes sent none because one went out within the resend cooldown '
            + '(the latest code sent still works), or what to do with a `challenge`.',
        })),
      }, {
        description: 'The attempt now uses `method`.',
        examples: [{ ephemeral_token: 'kP3vX9sQ2mT7bW1nR5yH8cJ4fL6dG0aE', method: 'email' }],
      }),
      ...errorResponses({
        400: ['FST_ERR_VALIDATION', 'AUTH_KIT_SAME_METHOD'],
        401: ['AUTH_KIT_INVALID_EPHEMERAL_TOKEN'],
        404: ['AUTH_KIT_METHOD_NOT_FOUND'],
        422: ['AUTH_KIT_NO_EMAIL_ADDRESS'],
        503: ['AUTH_KIT_DELIVERY_FAILED'],
      }),
    },
  },
  resend: {
    tags: ['login'],
    operationId: 'loginResend',
    summary: 'Log in, step 2: send a new code',
    description: 'For an attempt whose method sends codes (email, SMS). Only the latest code sent works.',
    body: Type.Object({ ephemeral_token: EphemeralTokenInput }, { ...strict, examples: [{ ephemeral_token: EXAMPLE_EPHEMERAL }] }),
    response: {
      200: Type.Object({ ephemeral_token: Type.String(), detail: Type.String() }, {
        description: 'A new code is on its way.',
        examples: [{ ephemeral_token: 'kP3vX9sQ2mT7bW1nR5yH8cJ4fL6dG0aE', detail: 'MFA code sent.' }],
      }),
      ...errorResponses({
        400: ['FST_ERR_VALIDATION', 'AUTH_KIT_METHOD_NOT_DISPATCHABLE'],
        401: ['AUTH_KIT_INVALID_EPHEMERAL_TOKEN'],
        422: ['AUTH_KIT_NO_EMAIL_ADDRESS'],
        429: ['AUTH_KIT_RESEND_TOO_SOON'],
        503: ['AUTH_KIT_DELIVERY_FAILED'],
      }),
    },
  },
  user: {
    tags: ['login'],
    operationId: 'getUser',
    summary: 'The logged-in user',
    description: 'Needs **Authorize** with an `access` token.',
    security: bearer,
    response: {
      200: Type.Object({ user: Type.Ref(PublicUser) }, { description: 'The user of the access token.', examples: [{ user: EXAMPLE_USER }] }),
      ...errorResponses({ 401: ['AUTH_KIT_UNAUTHORIZED'] }),
    },
  },
  stepUp: {
    tags: ['login'],
    operationId: 'loginStepUp',
    summary: 'Step up: a fresh second factor for this session',
    description: 'For routes that want a recent second factor (401 AUTH_KIT_STEP_UP_REQUIRED). `code` is a code of `method` (default: the primary) '
      + 'or a backup code; the answer is a new access token of the same session, whose second factor was checked now. '
      + `Copy \`access\` into **Authorize**. ${noStore}`,
    security: bearer,
    body: Type.Object({ code: CodeInput, method: Type.Optional(MethodName) }, { ...strict, examples: [{ code: '123456', method: 'app' }] }),
    response: {
      200: Type.Object({ access: Type.String(), access_expiration: Type.String({ format: 'date-time' }) }, {
        description: 'A fresh access token of the same session.',
        examples: [{ access: EXAMPLE_ACCESS, access_expiration: EXAMPLE_EXPIRATION }],
      }),
      ...errorResponses({
        400: ['FST_ERR_VALIDATION'],
        401: ['AUTH_KIT_UNAUTHORIZED'],
        403: ['AUTH_KIT_INVALID_CODE', 'AUTH_KIT_MFA_SETUP_REQUIRED'],
        404: ['AUTH_KIT_METHOD_NOT_FOUND'],
        429: ['AUTH_KIT_TOO_MANY_ATTEMPTS'],
      }),
    },
  },
  refresh: {
    tags: ['login'],
    operationId: 'refreshToken',
    summary: 'New tokens for a refresh token',
    description: 'The refresh token sent stops working; sending it again later revokes every token of its session (reuse detection). '
      + noStore,
    body: Type.Object({ refresh: RefreshTokenInput }, { ...strict, examples: [{ refresh: 'paste the refresh token of POST /login/verify/' }] }),
    response: {
      200: namedResponse(TokenPair, 'New tokens; the old refresh token no longer works.', TokenPair.examples[0]),
      ...errorResponses({ 400: ['FST_ERR_VALIDATION'], 401: ['AUTH_KIT_INVALID_REFRESH_TOKEN'] }),
    },
  },
  logout: {
    tags: ['login'],
    operationId: 'logout',
    summary: 'Log out: end the session of a refresh token',
    description: 'If the refresh token is the caller\'s, its session ends: the refresh token and the session\'s access tokens stop working. Anything else: 204, nothing changes.',
    security: bearer,
    body: Type.Object({ refresh: RefreshTokenInput }, { ...strict, examples: [{ refresh: 'paste the refresh token of POST /login/verify/' }] }),
    response: {
      204: noContent('Logged out.'),
      ...errorResponses({ 400: ['FST_ERR_VALIDATION'], 401: ['AUTH_KIT_UNAUTHORIZED'] }),
    },
  },
  sessions: {
    tags: ['sessions and devices'],
    operationId: 'listSessions',
    summary: 'The user\'s live sessions',
    description: 'One per login (refresh-token chain), newest first; `current` marks the caller\'s.',
    security: bearer,
    response: {
      200: Type.Array(Type.Ref(Session), { description: 'Live sessions, newest first.', examples: [[sessionExample]] }),
      ...errorResponses({ 401: ['AUTH_KIT_UNAUTHORIZED'], 403: ['AUTH_KIT_MFA_SETUP_REQUIRED'] }),
    },
  },
  revokeSession: {
    tags: ['sessions and devices'],
    operationId: 'revokeSession',
    summary: 'End one session',
    description: 'Its refresh token and access tokens stop working at once. An id that is not the caller\'s: 204, nothing changes.',
    security: bearer,
    body: Type.Object({ id: RecordIdInput }, { ...strict, examples: [{ id: 'paste an id of GET /sessions/' }] }),
    response: {
      204: noContent('Done.'),
      ...errorResponses({ 400: ['FST_ERR_VALIDATION'], 401: ['AUTH_KIT_UNAUTHORIZED'], 403: ['AUTH_KIT_MFA_SETUP_REQUIRED'] }),
    },
  },
  revokeOtherSessions: {
    tags: ['sessions and devices'],
    operationId: 'revokeOtherSessions',
    summary: 'End every session but this one',
    description: 'Every other session of the user stops working, and every remembered device is forgotten.',
    security: bearer,
    response: {
      204: noContent('Done.'),
      ...errorResponses({ 401: ['AUTH_KIT_UNAUTHORIZED'], 403: ['AUTH_KIT_MFA_SETUP_REQUIRED'] }),
    },
  },
  devices: {
    tags: ['sessions and devices'],
    operationId: 'listDevices',
    summary: 'The user\'s remembered devices',
    description: 'Devices that skip the second step (POST /login/verify/ with `remember_device: true`).',
    security: bearer,
    response: {
      200: Type.Array(Type.Ref(Device), { description: 'Remembered devices.', examples: [[deviceExample]] }),
      ...errorResponses({ 401: ['AUTH_KIT_UNAUTHORIZED'], 403: ['AUTH_KIT_MFA_SETUP_REQUIRED'] }),
    },
  },
  revokeDevice: {
    tags: ['sessions and devices'],
    operationId: 'revokeDevice',
    summary: 'Forget a remembered device',
    description: 'Its device token stops working: the next login from it takes the second step.',
    security: bearer,
    body: Type.Object({ id: RecordIdInput }, { ...strict, examples: [{ id: 'paste an id of GET /devices/' }] }),
    response: {
      204: noContent('Done.'),
      ...errorResponses({ 400: ['FST_ERR_VALIDATION'], 401: ['AUTH_KIT_UNAUTHORIZED'], 403: ['AUTH_KIT_MFA_SETUP_REQUIRED'] }),
    },
  },
} satisfies Record<string, Record<string, unknown>>

/**
 * The login route schemas for the configured methods: with a challenge–response
 * method (a passkey), verify and step-up take `credential` instead of `code`,
 * and change-method and resend may answer a `challenge` (SPEC section 10).
 * Without one they are `loginRouteSchemas` exactly.
 */
export function loginRouteSchemasFor (fields: ChallengeResponseFields = {}) {
  const { credential, challenge } = fields
  const { verify, stepUp, changeMethod, resend } = loginRouteSchemas
  return {
    ...loginRouteSchemas,
    verify: credential === undefined ? verify : {
      ...verify,
      description: `${verify.description} A passkey attempt sends \`credential\` instead of \`code\`: the answer to the attempt's \`challenge\` (a backup code still goes in \`code\`).`,
      body: withCredential(verify.body, credential, 'code', true, 'Instead of `code`, for an attempt whose method answers challenges (a passkey).'),
    },
    stepUp: credential === undefined ? stepUp : {
      ...stepUp,
      description: `${stepUp.description} A passkey sends \`credential\` instead of \`code\`: the answer to the \`challenge\` of POST /mfa/send/.`,
      body: withCredential(stepUp.body, credential, 'code', true, 'Instead of `code`, for a method that answers challenges (a passkey): the answer to the `challenge` of POST /mfa/send/.'),
    },
    changeMethod: challenge === undefined ? changeMethod : {
      ...changeMethod,
      response: { ...changeMethod.response, 200: withChallenge(changeMethod.response[200], challenge, LOGIN_CHALLENGE) },
    },
    resend: challenge === undefined ? resend : {
      ...resend,
      description: `${resend.description} For a passkey attempt, a new \`challenge\` replaces the attempt's.`,
      response: { ...resend.response, 200: withChallenge(resend.response[200], challenge, 'Only for an attempt whose method answers challenges (a passkey): the new one, which replaces the attempt\'s.') },
    },
  }
}
/** The login routes as configured: with a challenge–response method, `credential` and `challenge` may come. */
type LoginRoutes = ReturnType<typeof loginRouteSchemasFor>
type LoginRouteAnswer<Route extends keyof LoginRoutes> = LoginRoutes[Route]['response'] extends { 200: infer Answer extends TSchema } ? Static<Answer> : never

// What the services answer, read from the schemas the routes serialize with:
// a schema change is a compile error in the service that no longer fits it.
/** Step 1's answer when a second factor follows; `challenge` only for a challenge–response method (a passkey). */
export type LoginMfaStarted = Static<WithChallenge<typeof LoginMfaStarted.properties>>
export type LoginDone = Static<typeof LoginDone>
export type LoginSetupRequired = Static<typeof LoginSetupRequired>
/** What step 1 answers: `POST /login/` and `app.authKit.startLogin`. */
export type LoginAnswer = LoginMfaStarted | LoginDone | LoginSetupRequired
export type VerifyAnswer = LoginRouteAnswer<'verify'>
export type StepUpAnswer = LoginRouteAnswer<'stepUp'>
export type ChangeMethodAnswer = LoginRouteAnswer<'changeMethod'>
export type ResendAnswer = LoginRouteAnswer<'resend'>
export type Session = Static<typeof Session>
export type Device = Static<typeof Device>

export type DetailSchema = typeof Detail
export type { TSchema }

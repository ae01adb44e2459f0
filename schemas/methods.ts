import { Type, type Static, type TOptional, type TSchema } from '@sinclair/typebox'
import { type ChallengeResponseFields, CodeInput, Detail, errorResponses, namedResponse, noContent, withChallenge, withCredential } from './common.js'
import type { ErrorCode } from '../src/errors.js'

const MethodName = Type.Unsafe<string>({ $ref: 'AuthKitMethodName#' })
const strict = { additionalProperties: false }
const auth = { security: [{ bearerAuth: [] }], tags: ['methods'] }
/** Once the user has an active method, a token without a second factor is refused (SPEC section 3, Methods). */
const gated = 'Once you have an active method, needs an access token from a two-step login (or POST /login/step-up/).'

export const MethodSummary = Type.Object({
  name: Type.String(),
  display_name: Type.String(),
  is_active: Type.Boolean(),
  is_primary: Type.Boolean(),
  is_setup: Type.Boolean(),
  requires_dispatch: Type.Boolean({ description: 'The method sends codes (email, SMS); an authenticator app does not.' }),
  backup_codes_remaining: Type.Integer({ minimum: 0 }),
}, { $id: 'AuthKitMethod', title: 'AuthKitMethod', description: 'A configured method and its state for the user.' })
/** One entry of `GET /mfa/`. */
export type MethodSummary = Static<typeof MethodSummary>

export const BackupCodes = Type.Array(Type.String(), {
  description: 'Shown once: groups of four Crockford base32 characters joined by "-". Each works once. Keep them somewhere safe.',
})

const EXAMPLE_BACKUP_CODES = ['7KQM-2XHD-9RTA-4VNB', 'C3WE-8PJZ-5YGF-1SKM']
const EXAMPLE_QR_LINK = 'otpauth://totp/My%20App:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=My%20App&algorithm=SHA1&digits=6&period=30'
/** A QR code's SVG as `GET /mfa/qr/` writes it, cut down to a version-1 code's three finder patterns. */
const EXAMPLE_QR_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 25 25" shape-rendering="crispEdges">'
  + '<path fill="#ffffff" d="M0 0h25v25H0z"/>'
  + '<path fill-rule="evenodd" d="M2 2h7v7H2zM3 3v5h5V3zM4 4h3v3H4zM16 2h7v7h-7zM17 3v5h5V3zM18 4h3v3h-3zM2 16h7v7H2zM3 17v5h5v-5zM4 18h3v3H4z"/></svg>'
/** What GET /mfa/qr/ answers for a `method` that is not a configured one: its bad input is the query, not a body. */
const QR_VALIDATION_MESSAGE = 'querystring/method must be equal to one of the allowed values'
const EXAMPLE_SETUP_DATA: Record<string, unknown> = {
  app: { qr_link: EXAMPLE_QR_LINK, qr_code: 'data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=' },
}

/**
 * The errors of a change to an active method that one of its codes allows
 * (primary, backup codes, deactivate, delete); `refusals`: the route's own 403s,
 * given before the code is looked at.
 */
function codeCheckedChangeErrors (...refusals: ErrorCode[]): Record<number, TSchema> {
  return errorResponses({
    400: ['FST_ERR_VALIDATION'],
    401: ['AUTH_KIT_UNAUTHORIZED', 'AUTH_KIT_STEP_UP_REQUIRED'],
    403: [...refusals, 'AUTH_KIT_INVALID_CODE', 'AUTH_KIT_MFA_SETUP_REQUIRED'],
    404: ['AUTH_KIT_METHOD_NOT_FOUND'],
    429: ['AUTH_KIT_TOO_MANY_ATTEMPTS'],
  })
}

/** What a handler's setup shape most likely answers, for the documented example. */
function setupExample (name: string, schema: TSchema): unknown {
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0]
  if (name in EXAMPLE_SETUP_DATA) return EXAMPLE_SETUP_DATA[name]
  const keys = Object.keys((schema as { properties?: object }).properties ?? {})
  return keys.length === 1 && keys[0] === 'detail' ? { detail: 'A verification code has been sent.' } : undefined
}

/** The create response around one shape of `setup_data`. */
export function createdMethod<SetupData extends TSchema> (setupData: SetupData) {
  return Type.Object({ method: Type.String(), backup_codes: BackupCodes, setup_data: setupData })
}
/** What `POST /mfa/` answers; `setup_data` is the handler's own shape. */
export type CreatedMethod = Static<ReturnType<typeof createdMethod<TSchema>>>

export interface MethodRouteOptions extends ChallengeResponseFields {
  /** The configured handlers: their setup shapes make `setup_data`. */
  setupSchemas: Array<{ name: string, schema: TSchema }>
  deleteActiveMethodRequireCode: boolean
  updatePrimaryMethodRequirePrimaryCode: boolean
}

export type MethodRouteName = 'list' | 'create' | 'qr' | 'confirm' | 'primary' | 'deactivate' | 'delete' | 'send' | 'backupCodes'

/** What a method route's `credential` is, when a configured method answers challenges (SPEC section 10). */
const METHOD_CREDENTIAL = 'Instead of the code, for a method that answers challenges (a passkey): the answer to the `challenge` of POST /mfa/send/.'

/**
 * Route schemas of SPEC section 3, "Methods", for the configured handlers.
 * With a challenge–response method (a passkey), the routes that take a code
 * take `credential` instead, and send may answer a `challenge`.
 */
export function methodRouteSchemas (o: MethodRouteOptions) {
  const schemas = codeMethodRouteSchemas(o)
  const { credential, setupCredential, sendChallenge } = o
  // The static types stay those of the code-only bodies (what the typed client
  // is built from); `credential` is typed by the passkey schemas (schemas/passkey.ts).
  type Body<K extends keyof typeof schemas> = (typeof schemas)[K] extends { body: infer B } ? B : never
  if (setupCredential !== undefined) {
    schemas.confirm.body = withCredential(schemas.confirm.body, setupCredential, 'code', true,
      'Instead of `code`, for a method that answers challenges (a passkey): the answer to `setup_data.options` of POST /mfa/.') as unknown as Body<'confirm'>
  }
  if (credential !== undefined) {
    schemas.primary.body = withCredential(schemas.primary.body, credential, 'primary_code', o.updatePrimaryMethodRequirePrimaryCode,
      'Instead of `primary_code`, when the current primary answers challenges (a passkey): the answer to the `challenge` of POST /mfa/send/ for it.') as unknown as Body<'primary'>
    schemas.deactivate.body = withCredential(schemas.deactivate.body, credential, 'code', true, METHOD_CREDENTIAL) as unknown as Body<'deactivate'>
    schemas.delete.body = withCredential(schemas.delete.body, credential, 'code', false, METHOD_CREDENTIAL) as unknown as Body<'delete'>
    schemas.backupCodes.body = withCredential(schemas.backupCodes.body, credential, 'code', true, METHOD_CREDENTIAL) as unknown as Body<'backupCodes'>
  }
  if (sendChallenge !== undefined) {
    schemas.send.description += ' A passkey is sent no code: the answer carries a `challenge` instead.'
    schemas.send.response = {
      ...schemas.send.response,
      200: withChallenge(Type.Object({ detail: Type.String() }, { description: 'A code is on its way, or (a passkey) a challenge to answer.', examples: [{ detail: 'MFA code sent.' }] }),
        sendChallenge, 'Only for a method that answers challenges (a passkey).'),
    }
  }
  return schemas
}

/** The method route schemas of methods that take codes. */
function codeMethodRouteSchemas (o: MethodRouteOptions) {
  // A variant inside oneOf keeps no `examples` (OpenAPI 3.0 has no such schema keyword); the create answer's examples show them.
  const setupVariants = o.setupSchemas.map(({ name, schema }) => {
    const { examples: _examples, ...variant } = schema
    return { ...variant, title: schema.title ?? `${name} setup data`, description: schema.description ?? `setup_data of the "${name}" method.` }
  })
  const names = o.setupSchemas.map(({ name }) => name)
  const createExamples = Object.fromEntries(o.setupSchemas.flatMap(({ name, schema }) => {
    const setupData = setupExample(name, schema)
    return setupData === undefined ? [] : [[name, { summary: `method "${name}"`, value: { method: name, backup_codes: EXAMPLE_BACKUP_CODES, setup_data: setupData } }]]
  }))
  const example = names.includes('app') ? 'app' : names[0]
  return {
    list: {
      ...auth,
      operationId: 'listMethods',
      summary: 'Every configured method and its state for the user',
      description: 'One entry per configured method, in the server\'s order, set up or not.',
      response: {
        200: Type.Array(Type.Ref(MethodSummary), {
          description: 'The methods.',
          examples: [[{ name: 'app', display_name: 'Authenticator App', is_active: true, is_primary: true, is_setup: true, requires_dispatch: false, backup_codes_remaining: 10 }]],
        }),
        ...errorResponses({ 401: ['AUTH_KIT_UNAUTHORIZED'] }),
      },
    },
    create: {
      ...auth,
      operationId: 'createMethod',
      summary: 'Set a method up (inactive until confirmed)',
      description: 'Answers the method\'s backup codes (shown only here: keep them) and its setup data. For `app`, see the QR code (an SVG image) at '
        + 'GET /mfa/qr/ and scan it with an authenticator app; methods that send codes send one now. Then confirm with POST /mfa/confirm/. '
        + `${gated} Sent with \`Cache-Control: no-store\`.`,
      body: Type.Object({ method: MethodName }, { ...strict, examples: [{ method: example }] }),
      response: {
        201: Type.Unsafe({
          ...createdMethod(setupVariants.length === 1 ? setupVariants[0] : Type.Unsafe({ oneOf: setupVariants })),
          description: 'Created, inactive until confirmed.',
          'x-examples': createExamples,
        }),
        ...errorResponses({
          400: ['FST_ERR_VALIDATION'],
          401: ['AUTH_KIT_UNAUTHORIZED', 'AUTH_KIT_STEP_UP_REQUIRED'],
          409: ['AUTH_KIT_METHOD_EXISTS'],
          422: ['AUTH_KIT_NO_EMAIL_ADDRESS'],
          503: ['AUTH_KIT_DELIVERY_FAILED'],
        }),
      },
    },
    qr: {
      ...auth,
      operationId: 'getMethodQr',
      summary: 'The QR code of a method being set up, as an SVG image',
      description: 'The QR code of an authenticator-app method that is created (POST /mfa/) and not yet confirmed, as an SVG image: scan it, '
        + `then confirm with the app's code. 404 once the method is active, or for a method without a QR code. ${gated}`,
      querystring: Type.Object({
        method: Type.Unsafe<string>({ type: 'string', enum: names, description: 'The method being set up.', default: example }),
      }, strict),
      response: {
        200: {
          description: 'The QR code (SVG). Sent with `Cache-Control: no-store`.',
          content: { 'image/svg+xml': { schema: { type: 'string', description: 'An SVG document.' }, example: EXAMPLE_QR_SVG } },
        },
        ...errorResponses({
          400: ['FST_ERR_VALIDATION'],
          401: ['AUTH_KIT_UNAUTHORIZED', 'AUTH_KIT_STEP_UP_REQUIRED'],
          404: ['AUTH_KIT_METHOD_NOT_FOUND'],
        }, { validation: QR_VALIDATION_MESSAGE }),
      },
    },
    confirm: {
      ...auth,
      operationId: 'confirmMethod',
      summary: 'Activate a method with its own code',
      description: 'The code the app shows (or the code sent, for a method that sends codes: on the demo, see /dev/outbox). The user\'s first active method '
        + 'becomes primary, and from the next login on, login takes two steps. Backup codes are not accepted here. With a setup-only token, '
        + `the answer adds a full session. ${gated}`,
      body: Type.Object({ method: MethodName, code: CodeInput }, { ...strict, examples: [{ method: example, code: '123456' }] }),
      response: {
        200: Type.Object({
          detail: Type.String(),
          access: Type.Optional(Type.String({ description: 'Only after a setup-only login: a full session.' })),
          refresh: Type.Optional(Type.String()),
          access_expiration: Type.Optional(Type.String({ format: 'date-time' })),
          refresh_expiration: Type.Optional(Type.String({ format: 'date-time' })),
        }, { description: 'The method is active.', examples: [{ detail: 'Activated MFA method.' }] }),
        ...errorResponses({
          400: ['FST_ERR_VALIDATION'],
          401: ['AUTH_KIT_UNAUTHORIZED', 'AUTH_KIT_STEP_UP_REQUIRED'],
          403: ['AUTH_KIT_INVALID_CODE'],
          404: ['AUTH_KIT_METHOD_NOT_FOUND'],
          409: ['AUTH_KIT_METHOD_ALREADY_ACTIVE'],
          429: ['AUTH_KIT_TOO_MANY_ATTEMPTS'],
        }),
      },
    },
    send: {
      ...auth,
      operationId: 'sendMethodCode',
      summary: 'Send a code for a method that sends codes',
      description: 'Active or not; the code is good for that method on any route (confirm, step-up, …). Open to any logged-in token, so an email-only user can get the code for step-up.',
      body: Type.Object({ method: MethodName }, { ...strict, examples: [{ method: names.includes('email') ? 'email' : example }] }),
      response: {
        200: namedResponse(Detail, 'A code is on its way.', { detail: 'MFA code sent.' }),
        ...errorResponses({
          400: ['FST_ERR_VALIDATION', 'AUTH_KIT_METHOD_NOT_DISPATCHABLE'],
          401: ['AUTH_KIT_UNAUTHORIZED'],
          404: ['AUTH_KIT_METHOD_NOT_FOUND'],
          422: ['AUTH_KIT_NO_EMAIL_ADDRESS'],
          429: ['AUTH_KIT_RESEND_TOO_SOON'],
          503: ['AUTH_KIT_DELIVERY_FAILED'],
        }),
      },
    },
    primary: {
      ...auth,
      operationId: 'setPrimaryMethod',
      summary: 'Make an active method the primary',
      description: 'The primary is the method a login starts with. '
        + (o.updatePrimaryMethodRequirePrimaryCode ? '`primary_code`: a code (or backup code) of the current primary. ' : 'No code needed (updatePrimaryMethodRequirePrimaryCode is off). ')
        + gated,
      body: Type.Object({
        method: MethodName,
        // Required or not by an option: typed as optional, which it may be.
        primary_code: (o.updatePrimaryMethodRequirePrimaryCode ? CodeInput : Type.Optional(CodeInput)) as TOptional<typeof CodeInput>,
      }, { ...strict, examples: [{ method: example, primary_code: '123456' }] }),
      response: {
        200: namedResponse(Detail, 'The method is the primary.', { detail: 'Updated primary MFA method.' }),
        ...codeCheckedChangeErrors(),
      },
    },
    backupCodes: {
      ...auth,
      operationId: 'regenerateBackupCodes',
      summary: 'New backup codes for an active method',
      description: `The method's earlier backup codes stop working, and remembered devices are forgotten. ${gated} Sent with \`Cache-Control: no-store\`.`,
      body: Type.Object({ method: MethodName, code: CodeInput }, { ...strict, examples: [{ method: example, code: '123456' }] }),
      response: {
        200: Type.Object({ backup_codes: BackupCodes }, { description: 'The new backup codes, shown once.', examples: [{ backup_codes: EXAMPLE_BACKUP_CODES }] }),
        ...codeCheckedChangeErrors(),
      },
    },
    deactivate: {
      ...auth,
      operationId: 'deactivateMethod',
      summary: 'Deactivate a method that is not the primary',
      description: `\`code\`: the method's own code (or one of its backup codes). Remembered devices are forgotten. ${gated}`,
      body: Type.Object({ method: MethodName, code: CodeInput }, { ...strict, examples: [{ method: names.includes('email') ? 'email' : example, code: '123456' }] }),
      response: {
        200: namedResponse(Detail, 'The method is inactive.', { detail: 'Deactivated MFA method.' }),
        ...codeCheckedChangeErrors('AUTH_KIT_PRIMARY_METHOD_PROTECTED'),
      },
    },
    delete: {
      ...auth,
      operationId: 'deleteMethod',
      summary: 'Delete a method',
      description: 'A method that is not active is deleted without a code. '
        + (o.deleteActiveMethodRequireCode ? 'An active method needs `code`, one of its codes (missing or wrong: 403 AUTH_KIT_INVALID_CODE). ' : 'No code needed (deleteActiveMethodRequireCode is off). ')
        + `Deleting the primary promotes the active method created first. Remembered devices are forgotten. ${gated}`,
      body: Type.Object({ method: MethodName, code: Type.Optional(CodeInput) }, { ...strict, examples: [{ method: example, code: '123456' }] }),
      response: {
        204: noContent('Deleted.'),
        ...codeCheckedChangeErrors('AUTH_KIT_ACTIVE_METHOD_PROTECTED', 'AUTH_KIT_PRIMARY_METHOD_PROTECTED'),
      },
    },
  } satisfies Record<MethodRouteName, Record<string, unknown>>
}

export const methodSchemas = [MethodSummary]

type MethodRoutes = ReturnType<typeof methodRouteSchemas>
/** What `POST /mfa/confirm/` answers: after a setup-only login, a full session's tokens too. */
export type ConfirmAnswer = Static<MethodRoutes['confirm']['response'][200]>

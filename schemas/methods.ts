import { Type, type TSchema } from '@sinclair/typebox'
import { CodeInput, Detail, errorResponse } from './common.js'

const MethodName = Type.Unsafe<string>({ $ref: 'AuthKitMethodName#' })
const strict = { additionalProperties: false }
const auth = { security: [{ bearerAuth: [] }], tags: ['methods'] }
const unauthorized = errorResponse(['AUTH_KIT_UNAUTHORIZED'])
const locked = errorResponse(['AUTH_KIT_TOO_MANY_ATTEMPTS'])

export const MethodSummary = Type.Object({
  name: Type.String(),
  display_name: Type.String(),
  is_active: Type.Boolean(),
  is_primary: Type.Boolean(),
  is_setup: Type.Boolean(),
  requires_dispatch: Type.Boolean(),
  backup_codes_remaining: Type.Integer({ minimum: 0 }),
}, { $id: 'AuthKitMethod', title: 'AuthKitMethod' })

export const BackupCodes = Type.Array(Type.String(), {
  description: 'Shown once: groups of four Crockford base32 characters joined by "-". Each works once.',
})

/** The create response around one shape of `setup_data`. */
export function createdMethod (setupData: TSchema): TSchema {
  return Type.Object({ method: Type.String(), backup_codes: BackupCodes, setup_data: setupData })
}

export interface MethodRouteOptions {
  /** The configured handlers: their setup shapes make `setup_data`. */
  setupSchemas: Array<{ name: string, schema: TSchema }>
  deleteActiveMethodRequireCode: boolean
  updatePrimaryMethodRequirePrimaryCode: boolean
}

export function methodRoutes (o: MethodRouteOptions): Record<"list" | "create" | "confirm" | "qr" | "primary" | "deactivate" | "delete" | "send" | "backupCodes", Record<string, unknown>> {
  const setupVariants = o.setupSchemas.map(({ name, schema }) => ({ ...schema, title: schema.title ?? `${name} setup data`, description: schema.description ?? `setup_data of the "${name}" method.` }))
  return {
    list: {
      ...auth,
      summary: 'Every configured method and its state for the user',
      response: { 200: Type.Array(Type.Ref(MethodSummary)), 401: unauthorized },
    },
    create: {
      ...auth,
      summary: 'Set a method up (inactive until confirmed)',
      description: 'Returns the method\'s backup codes (shown only here) and its setup data. Sends a code for methods that send codes. Cache-Control: no-store.',
      body: Type.Object({ method: MethodName }, strict),
      response: {
        201: createdMethod(setupVariants.length === 1 ? setupVariants[0] : Type.Unsafe({ oneOf: setupVariants })),
        400: errorResponse(['FST_ERR_VALIDATION']),
        401: unauthorized,
        409: errorResponse(['AUTH_KIT_METHOD_EXISTS']),
        422: errorResponse(['AUTH_KIT_NO_EMAIL_ADDRESS']),
        503: errorResponse(['AUTH_KIT_DELIVERY_FAILED']),
      },
    },
    confirm: {
      ...auth,
      summary: 'Activate a method with its own code',
      description: 'The user\'s first active method becomes primary. Backup codes are not accepted here.',
      body: Type.Object({ method: MethodName, code: CodeInput }, strict),
      response: {
        200: Type.Object({
          detail: Type.String(),
          access: Type.Optional(Type.String()),
          refresh: Type.Optional(Type.String()),
          access_expiration: Type.Optional(Type.String({ format: 'date-time' })),
          refresh_expiration: Type.Optional(Type.String({ format: 'date-time' })),
        }),
        400: errorResponse(['FST_ERR_VALIDATION']),
        401: unauthorized,
        403: errorResponse(['AUTH_KIT_INVALID_CODE']),
        404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
        409: errorResponse(['AUTH_KIT_METHOD_ALREADY_ACTIVE']),
        429: locked,
      },
    },
    qr: {
      ...auth,
      summary: 'The QR code of a method being set up, as an image',
      description: 'SVG of the otpauth link of a TOTP method that is created and not yet active. Cache-Control: no-store.',
      produces: ['image/svg+xml'],
      querystring: Type.Object({ method: MethodName }, strict),
      response: {
        200: { description: 'The QR code.', content: { 'image/svg+xml': { schema: { type: 'string' } } } },
        400: errorResponse(['FST_ERR_VALIDATION']),
        401: unauthorized,
        404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
      },
    },
    primary: {
      ...auth,
      summary: 'Make an active method the primary',
      description: o.updatePrimaryMethodRequirePrimaryCode ? 'primary_code: a code (or backup code) of the current primary.' : 'No code needed (updatePrimaryMethodRequirePrimaryCode is off).',
      body: o.updatePrimaryMethodRequirePrimaryCode
        ? Type.Object({ method: MethodName, primary_code: CodeInput }, strict)
        : Type.Object({ method: MethodName, primary_code: Type.Optional(CodeInput) }, strict),
      response: {
        200: Type.Ref(Detail),
        400: errorResponse(['FST_ERR_VALIDATION']),
        401: unauthorized,
        403: errorResponse(['AUTH_KIT_INVALID_CODE']),
        404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
        429: locked,
      },
    },
    deactivate: {
      ...auth,
      summary: 'Deactivate a method that is not the primary',
      body: Type.Object({ method: MethodName, code: CodeInput }, strict),
      response: {
        200: Type.Ref(Detail),
        400: errorResponse(['FST_ERR_VALIDATION']),
        401: unauthorized,
        403: errorResponse(['AUTH_KIT_PRIMARY_METHOD_PROTECTED', 'AUTH_KIT_INVALID_CODE']),
        404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
        429: locked,
      },
    },
    delete: {
      ...auth,
      summary: 'Delete a method',
      description: 'Deleting the primary promotes the active method created first. ' + (o.deleteActiveMethodRequireCode ? 'code: a code of the method, checked when it is active.' : 'No code needed (deleteActiveMethodRequireCode is off).'),
      body: Type.Object({ method: MethodName, code: Type.Optional(CodeInput) }, strict),
      response: {
        204: Type.Null({ description: 'Deleted.' }),
        400: errorResponse(['FST_ERR_VALIDATION']),
        401: unauthorized,
        403: errorResponse(['AUTH_KIT_ACTIVE_METHOD_PROTECTED', 'AUTH_KIT_PRIMARY_METHOD_PROTECTED', 'AUTH_KIT_INVALID_CODE']),
        404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
        429: locked,
      },
    },
    send: {
      ...auth,
      summary: 'Send a code for a method that sends codes (active or not)',
      body: Type.Object({ method: MethodName }, strict),
      response: {
        200: Type.Ref(Detail),
        400: errorResponse(['FST_ERR_VALIDATION', 'AUTH_KIT_METHOD_NOT_DISPATCHABLE']),
        401: unauthorized,
        404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
        422: errorResponse(['AUTH_KIT_NO_EMAIL_ADDRESS']),
        429: errorResponse(['AUTH_KIT_RESEND_TOO_SOON']),
        503: errorResponse(['AUTH_KIT_DELIVERY_FAILED']),
      },
    },
    backupCodes: {
      ...auth,
      summary: 'New backup codes for an active method (the old ones stop working)',
      body: Type.Object({ method: MethodName, code: CodeInput }, strict),
      response: {
        200: Type.Object({ backup_codes: BackupCodes }),
        400: errorResponse(['FST_ERR_VALIDATION']),
        401: unauthorized,
        403: errorResponse(['AUTH_KIT_INVALID_CODE']),
        404: errorResponse(['AUTH_KIT_METHOD_NOT_FOUND']),
        429: locked,
      },
    },
  }
}

export const methodSchemas = [MethodSummary]

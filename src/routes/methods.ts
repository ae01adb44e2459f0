import type { FastifyReply, FastifyRequest, FastifySchema } from 'fastify'
import { type ConfirmAnswer, createdMethod, methodRouteSchemas } from '../../schemas/methods.js'
import { type AuthKitGuards, requestContext } from '../core.js'
import type { MfaHandlerClass } from '../handlers/base.js'
import type { ChallengeResponseFields } from '../../schemas/common.js'
import type { ResolvedOptions } from '../options.js'
import type { AccountService } from '../services/account.js'
import type { MethodService } from '../services/methods.js'
import { AuthKitErrors } from '../errors.js'
import { type AuthKitRoute, type AuthKitRoutes, bothSlashes, factorResponse } from './route.js'

/** What the method routes use. */
export interface MethodRouteDeps {
  methods: MethodService
  account: AccountService
  guards: Pick<AuthKitGuards, 'authenticateAny' | 'requireSecondFactorForChanges'>
  /** The configured handlers, in order: their setup shapes make `setup_data`. */
  handlers: MfaHandlerClass[]
  /** The fields the configured challenge–response methods add (`HandlerRegistry.challengeResponseSchemas()`). */
  challengeResponse: ChallengeResponseFields
  /** The policies that change what a body must hold. */
  policies: Pick<ResolvedOptions['mfa'], 'deleteActiveMethodRequireCode' | 'updatePrimaryMethodRequirePrimaryCode'>
}

/** What the onRequest guard of each method route lets through (SPEC section 3, rule 1, section 9). */
interface MethodRouteAccess {
  /** A setup-only token may use it. */
  setup: boolean
  /** Once the user has an active method, the token must carry `mfa` in `amr`. */
  gated: boolean
}

/** Method management: SPEC section 3, "Methods". Every route needs auth. */
export async function methodRoutePlugin (app: AuthKitRoutes, { methods, account, guards, handlers, challengeResponse, policies }: MethodRouteDeps): Promise<void> {
  const s = methodRouteSchemas({
    setupSchemas: handlers.map((cls) => ({ name: cls.NAME, schema: cls.setupDataSchema })),
    ...challengeResponse,
    deleteActiveMethodRequireCode: policies.deleteActiveMethodRequireCode,
    updatePrimaryMethodRequirePrimaryCode: policies.updatePrimaryMethodRequirePrimaryCode,
  })
  // The document shows setup_data as oneOf over the handlers' shapes, but a
  // serializer given that oneOf writes a value with the first shape it fits (a
  // custom shape is often a superset of {detail}), dropping fields: each
  // method's answer is written with its own handler's shape instead.
  const created = new Map(handlers.map((cls) => [cls.NAME, createdMethod(cls.setupDataSchema)]))
  const access = new Map<string, MethodRouteAccess>()
  const route = <const Schema extends FastifySchema>(opts: AuthKitRoute<Schema>, rule: MethodRouteAccess): void => {
    access.set(`${opts.method as string} ${app.prefix}${opts.url.replace(/\/$/, '')}`, rule)
    bothSlashes(app, opts)
  }
  // Authentication and the gate run before the body is validated: an anonymous
  // or under-authenticated caller learns nothing of the schemas.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    await guards.authenticateAny(request)
    const rule = access.get(`${request.method} ${request.routeOptions.url?.replace(/\/$/, '') ?? ''}`) ?? { setup: false, gated: true }
    if (request.authKitSession!.setupOnly && !rule.setup) throw new AuthKitErrors.MfaSetupRequired()
    if (rule.gated) await guards.requireSecondFactorForChanges(request, reply)
  })

  route({ method: 'GET', url: '/mfa/', schema: s.list, handler: async (request) => methods.list(request.user) }, { setup: true, gated: false })
  route({
    method: 'POST', url: '/mfa/', schema: s.create,
    handler: async (request, reply) => {
      const result = await methods.create(requestContext(request), request.user, request.body.method)
      const body = reply.serializeInput(result, created.get(request.body.method) as Record<string, unknown>)
      return reply.code(201).type('application/json; charset=utf-8').send(body)
    },
  }, { setup: true, gated: true })
  route({
    method: 'POST', url: '/mfa/confirm/', schema: s.confirm,
    handler: async (request): Promise<ConfirmAnswer> => {
      const ctx = requestContext(request)
      const session = request.authKitSession!
      await methods.confirm(ctx, request.user, request.body.method, factorResponse(request.body), session.id)
      if (!session.setupOnly) return { detail: 'Activated MFA method.' }
      return { detail: 'Activated MFA method.', ...(await account.finishEnrolment(ctx, String(request.user.id), session.id)) }
    },
  }, { setup: true, gated: true })
  route({
    method: 'GET', url: '/mfa/qr/', schema: s.qr,
    handler: async (request, reply) => {
      const svg = await methods.qrCode(request.user, request.query.method)
      return reply.type('image/svg+xml').send(svg)
    },
  }, { setup: true, gated: true })
  route({
    method: 'POST', url: '/mfa/primary/', schema: s.primary,
    handler: async (request) => {
      await methods.setPrimary(requestContext(request), request.user, request.body.method, factorResponse(request.body, 'primary_code'))
      return { detail: 'Updated primary MFA method.' }
    },
  }, { setup: false, gated: true })
  route({
    method: 'POST', url: '/mfa/deactivate/', schema: s.deactivate,
    handler: async (request) => {
      await methods.deactivate(requestContext(request), request.user, request.body.method, factorResponse(request.body))
      return { detail: 'Deactivated MFA method.' }
    },
  }, { setup: false, gated: true })
  route({
    method: 'POST', url: '/mfa/delete/', schema: s.delete,
    handler: async (request, reply) => {
      await methods.delete(requestContext(request), request.user, request.body.method, factorResponse(request.body))
      return reply.code(204).send()
    },
  }, { setup: false, gated: true })
  route({
    method: 'POST', url: '/mfa/send/', schema: s.send,
    handler: async (request) => {
      const dispatched = await methods.send(requestContext(request), request.user, request.body.method)
      return { ...dispatched, detail: dispatched.detail ?? 'MFA code sent.' }
    },
  }, { setup: true, gated: false })
  route({
    method: 'POST', url: '/mfa/backup-codes/', schema: s.backupCodes,
    handler: async (request) => ({
      backup_codes: await methods.regenerateBackupCodes(requestContext(request), request.user, request.body.method, factorResponse(request.body)),
    }),
  }, { setup: false, gated: true })
}

import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createdMethod, methodRouteSchemas } from '../../schemas/methods.js'
import type { AuthKitCore } from '../core.js'
import { bothSlashes } from './route.js'

const ctx = (request: FastifyRequest) => ({ ip: request.ip })
type Body = { Body: { method: string, code?: string, primary_code?: string } }

/** Method management: SPEC section 3, "Methods". Every route needs auth. */
export async function methodRoutesPlugin (app: FastifyInstance, { core }: { core: AuthKitCore }): Promise<void> {
  const { mfa } = core.options
  const s = methodRouteSchemas({
    setupSchemas: core.registry.classes().map((cls) => ({ name: cls.NAME, schema: cls.setupDataSchema })),
    deleteActiveMethodRequireCode: mfa.deleteActiveMethodRequireCode,
    updatePrimaryMethodRequirePrimaryCode: mfa.updatePrimaryMethodRequirePrimaryCode,
  })
  // The document shows setup_data as oneOf over the handlers' shapes, but a
  // serializer given that oneOf writes a value with the first shape it fits (a
  // custom shape is often a superset of {detail}), dropping fields: each
  // method's answer is written with its own handler's shape instead.
  const created = new Map(core.registry.classes().map((cls) => [cls.NAME, createdMethod(cls.setupDataSchema)]))
  // Auth before body validation: an anonymous caller learns nothing of the schemas.
  app.addHook('onRequest', core.authenticate)
  const methods = core.methods

  bothSlashes(app, { method: 'GET', url: '/mfa/', schema: s.list, handler: async (request) => methods.list(request.user) })
  bothSlashes(app, {
    method: 'POST', url: '/mfa/', schema: s.create,
    handler: async (request: FastifyRequest<Body>, reply) => {
      const result = await methods.create(ctx(request), request.user, request.body.method)
      const body = reply.serializeInput(result, created.get(request.body.method) as Record<string, unknown>)
      return reply.code(201).type('application/json; charset=utf-8').send(body)
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/mfa/confirm/', schema: s.confirm,
    handler: async (request: FastifyRequest<Body>) => {
      await methods.confirm(ctx(request), request.user, request.body.method, request.body.code ?? '')
      return { detail: 'Activated MFA method.' }
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/mfa/primary/', schema: s.primary,
    handler: async (request: FastifyRequest<Body>) => {
      await methods.setPrimary(ctx(request), request.user, request.body.method, request.body.primary_code)
      return { detail: 'Updated primary MFA method.' }
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/mfa/deactivate/', schema: s.deactivate,
    handler: async (request: FastifyRequest<Body>) => {
      await methods.deactivate(ctx(request), request.user, request.body.method, request.body.code ?? '')
      return { detail: 'Deactivated MFA method.' }
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/mfa/delete/', schema: s.delete,
    handler: async (request: FastifyRequest<Body>, reply) => {
      await methods.delete(ctx(request), request.user, request.body.method, request.body.code)
      return reply.code(204).send()
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/mfa/send/', schema: s.send,
    handler: async (request: FastifyRequest<Body>) => {
      await methods.send(ctx(request), request.user, request.body.method)
      return { detail: 'MFA code sent.' }
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/mfa/backup-codes/', schema: s.backupCodes,
    handler: async (request: FastifyRequest<Body>) => ({
      backup_codes: await methods.regenerateBackupCodes(ctx(request), request.user, request.body.method, request.body.code ?? ''),
    }),
  })
}

import type { FastifyInstance, FastifyRequest } from 'fastify'
import { loginRouteSchemas as s } from '../../schemas/login.js'
import type { AuthKitCore } from '../core.js'
import { bothSlashes } from './route.js'

const ctx = (request: FastifyRequest) => ({ ip: request.ip })
type Body<T = Record<string, string>> = { Body: T }

/** Login, tokens and the account: SPEC section 3, "Login". */
export async function loginRoutes (app: FastifyInstance, { core }: { core: AuthKitCore }): Promise<void> {
  bothSlashes(app, {
    method: 'POST', url: '/login/', schema: s.login,
    handler: async (request: FastifyRequest<Body>) => core.login.login(ctx(request), request.body.username, request.body.password),
  })
  bothSlashes(app, {
    method: 'POST', url: '/token/refresh/', schema: s.refresh,
    handler: async (request: FastifyRequest<Body>) => {
      const { userId: _userId, ...tokens } = await core.tokens.refresh(request.body.refresh)
      return tokens
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/logout/', schema: s.logout, onRequest: core.authenticate,
    handler: async (request: FastifyRequest<Body>, reply) => {
      await core.tokens.logout(String(request.user.id), request.body.refresh)
      return reply.code(204).send()
    },
  })
  bothSlashes(app, {
    method: 'GET', url: '/user/', schema: s.user, onRequest: core.authenticate,
    handler: async (request) => ({ user: core.users.toPublic(request.user) }),
  })
  if (core.options.registration) {
    bothSlashes(app, {
      method: 'POST', url: '/registration/', schema: s.registration,
      handler: async (request: FastifyRequest<Body>, reply) => {
        const create = core.users.create
        if (create === undefined) throw new Error('fastify-auth-kit: the user store has no create()')
        const user = await create.call(core.users, { username: request.body.username, email: request.body.email, password: request.body.password })
        return reply.code(201).send({ user: core.users.toPublic(user) })
      },
    })
  }
  if (!core.options.mfa.enabled) return
  bothSlashes(app, {
    method: 'POST', url: '/login/verify/', schema: s.verify,
    handler: async (request: FastifyRequest<Body>) => core.login.verify(ctx(request), request.body.ephemeral_token, request.body.code),
  })
  bothSlashes(app, {
    method: 'POST', url: '/login/change-method/', schema: s.changeMethod,
    handler: async (request: FastifyRequest<Body>) => core.login.changeMethod(ctx(request), request.body.ephemeral_token, request.body.new_method),
  })
  bothSlashes(app, {
    method: 'POST', url: '/login/resend/', schema: s.resend,
    handler: async (request: FastifyRequest<Body>) => core.login.resend(ctx(request), request.body.ephemeral_token),
  })
}

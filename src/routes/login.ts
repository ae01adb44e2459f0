import type { FastifyReply, FastifyRequest } from 'fastify'
import { loginRouteSchemasFor } from '../../schemas/login.js'
import { type AuthKitCore, requestContext } from '../core.js'
import { publicUser } from '../users.js'
import { type AuthKitRoutes, bothSlashes, factorResponse } from './route.js'

/** Login, tokens, sessions and devices: SPEC section 3, "Login". */
export async function loginRoutePlugin (app: AuthKitRoutes, { core }: { core: AuthKitCore }): Promise<void> {
  const { login, tokens, account, users } = core
  const s = loginRouteSchemasFor(core.registry.challengeResponseSchemas())
  // Ending sessions or forgetting devices needs a second factor once the user
  // has one: a password-only login cannot sign out the user's stronger ones.
  const gated = [core.authenticate, async (request: FastifyRequest, reply: FastifyReply) => core.requireSecondFactorForChanges(request, reply)]
  bothSlashes(app, {
    method: 'POST', url: '/login/', schema: s.login,
    handler: async (request) =>
      login.login(requestContext(request), request.body.username, request.body.password, request.body.device_token),
  })
  bothSlashes(app, {
    method: 'POST', url: '/token/refresh/', schema: s.refresh,
    handler: async (request) => {
      const { userId: _userId, ...issued } = await tokens.refresh(request.body.refresh, async (id) => {
        if ((await users.findById(id)) != null) return true
        await account.forgetGoneUser(id)
        return false
      })
      return issued
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/logout/', schema: s.logout, onRequest: core.authenticateAny,
    handler: async (request, reply) => {
      await tokens.logout(String(request.user.id), request.body.refresh)
      return reply.code(204).send()
    },
  })
  bothSlashes(app, {
    method: 'GET', url: '/user/', schema: s.user, onRequest: core.authenticateAny,
    handler: async (request) => ({ user: publicUser(users, request.user) }),
  })
  bothSlashes(app, {
    method: 'GET', url: '/sessions/', schema: s.sessions, onRequest: core.authenticate,
    handler: async (request) => account.listSessions(String(request.user.id), request.authKitSession!),
  })
  bothSlashes(app, {
    method: 'POST', url: '/sessions/revoke/', schema: s.revokeSession, onRequest: gated,
    handler: async (request, reply) => {
      await account.revokeSession(requestContext(request), String(request.user.id), request.body.id)
      return reply.code(204).send()
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/sessions/revoke-others/', schema: s.revokeOtherSessions, onRequest: gated,
    handler: async (request, reply) => {
      await account.revokeOtherSessions(requestContext(request), String(request.user.id), request.authKitSession!)
      return reply.code(204).send()
    },
  })
  if (core.options.registration) {
    bothSlashes(app, {
      method: 'POST', url: '/registration/', schema: s.registration,
      handler: async (request, reply) => {
        const create = users.create
        if (create === undefined) throw new Error('fastify-auth-kit: the user store has no create()')
        const user = await create.call(users, { username: request.body.username, email: request.body.email, password: request.body.password })
        return reply.code(201).send({ user: publicUser(users, user) })
      },
    })
  }
  if (!core.options.mfa.enabled) return
  bothSlashes(app, {
    method: 'GET', url: '/devices/', schema: s.devices, onRequest: core.authenticate,
    handler: async (request) => account.listDevices(String(request.user.id), request.authKitSession!),
  })
  bothSlashes(app, {
    method: 'POST', url: '/devices/revoke/', schema: s.revokeDevice, onRequest: gated,
    handler: async (request, reply) => {
      await account.revokeDevice(requestContext(request), String(request.user.id), request.body.id)
      return reply.code(204).send()
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/login/verify/', schema: s.verify,
    handler: async (request) =>
      login.verify(requestContext(request), request.body.ephemeral_token, factorResponse(request.body), request.body.remember_device === true),
  })
  bothSlashes(app, {
    method: 'POST', url: '/login/step-up/', schema: s.stepUp, onRequest: core.authenticate,
    handler: async (request) =>
      login.stepUp(requestContext(request), request.user, request.authKitSession!.id, factorResponse(request.body), request.body.method),
  })
  bothSlashes(app, {
    method: 'POST', url: '/login/change-method/', schema: s.changeMethod,
    handler: async (request) =>
      login.changeMethod(requestContext(request), request.body.ephemeral_token, request.body.new_method),
  })
  bothSlashes(app, {
    method: 'POST', url: '/login/resend/', schema: s.resend,
    handler: async (request) => login.resend(requestContext(request), request.body.ephemeral_token),
  })
}

import { loginRouteSchemas as s, loginRouteSchemasFor } from '../../schemas/login.js'
import type { ChallengeResponseFields } from '../../schemas/common.js'
import { type AuthKitGuards, requestContext } from '../core.js'
import { publicUser, type UserStore } from '../users.js'
import type { AccountService } from '../services/account.js'
import type { LoginService } from '../services/login.js'
import type { TokenService } from '../services/tokens.js'
import { type AuthKitRoutes, bothSlashes, factorResponse } from './route.js'

/** What the login routes use. */
export interface LoginRouteDeps {
  login: LoginService
  tokens: TokenService
  account: AccountService
  users: UserStore<any>
  guards: Pick<AuthKitGuards, 'authenticate' | 'authenticateAny' | 'requireSecondFactorForChanges'>
  /** `POST /registration/` exists (the `registration` option). */
  registration: boolean
}

/**
 * Ending sessions or forgetting devices needs a second factor once the user
 * has one: a password-only login cannot sign out the user's stronger ones.
 */
function gatedBy (guards: LoginRouteDeps['guards']) {
  return [guards.authenticate, guards.requireSecondFactorForChanges]
}

/** Login, tokens and sessions: SPEC section 3, "Login". */
export async function loginRoutePlugin (app: AuthKitRoutes, { login, tokens, account, users, guards, registration }: LoginRouteDeps): Promise<void> {
  const gated = gatedBy(guards)
  bothSlashes(app, {
    method: 'POST', url: '/login/', schema: s.login,
    handler: async (request) =>
      login.login(requestContext(request), request.body.username, request.body.password, request.body.device_token),
  })
  bothSlashes(app, {
    method: 'POST', url: '/token/refresh/', schema: s.refresh,
    handler: async (request) => {
      const { userId: _userId, ...issued } = await tokens.refresh(request.body.refresh, {
        exists: async (id) => (await users.findById(id)) != null,
        gone: async (id) => account.forgetGoneUser(id),
      })
      return issued
    },
  })
  bothSlashes(app, {
    method: 'POST', url: '/logout/', schema: s.logout, onRequest: guards.authenticateAny,
    handler: async (request, reply) => {
      await tokens.logout(String(request.user.id), request.body.refresh)
      return reply.code(204).send()
    },
  })
  bothSlashes(app, {
    method: 'GET', url: '/user/', schema: s.user, onRequest: guards.authenticateAny,
    handler: async (request) => ({ user: publicUser(users, request.user) }),
  })
  bothSlashes(app, {
    method: 'GET', url: '/sessions/', schema: s.sessions, onRequest: guards.authenticate,
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
  if (registration) {
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
}

/** What the second-factor routes use. */
export interface SecondFactorRouteDeps extends Pick<LoginRouteDeps, 'login' | 'account' | 'guards'> {
  /** The fields the configured challenge–response methods add (`HandlerRegistry.challengeResponseSchemas()`). */
  challengeResponse: ChallengeResponseFields
}

/** What exists only while MFA is on (`mfa.enabled`): step 2 of login, step-up and remembered devices. */
export async function secondFactorRoutePlugin (app: AuthKitRoutes, deps: SecondFactorRouteDeps): Promise<void> {
  const { login, account, guards } = deps
  // With a challenge–response method (a passkey), verify and step-up take `credential`, change-method and resend may answer a `challenge`.
  const s = loginRouteSchemasFor(deps.challengeResponse)
  const gated = gatedBy(guards)
  bothSlashes(app, {
    method: 'GET', url: '/devices/', schema: s.devices, onRequest: guards.authenticate,
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
    method: 'POST', url: '/login/step-up/', schema: s.stepUp, onRequest: guards.authenticate,
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

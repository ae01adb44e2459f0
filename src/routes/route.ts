import type { FastifyInstance, RouteGenericInterface, RouteOptions } from 'fastify'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { FactorResponse } from '../handlers/base.js'

/**
 * Registers a route at its trailing-slash path (the documented one) and at the
 * same path without the slash (hidden from the OpenAPI document).
 */
export function bothSlashes<RG extends RouteGenericInterface> (app: FastifyInstance, route: RouteOptions<Server, IncomingMessage, ServerResponse, RG>): void {
  const url = route.url.endsWith('/') ? route.url : `${route.url}/`
  app.route<RG>({ ...route, url })
  app.route<RG>({ ...route, url: url.slice(0, -1), schema: { ...route.schema, hide: true } as RouteOptions['schema'] })
}

/**
 * The proof a body offers: its `credential` (a challenge–response method,
 * SPEC section 10), else its code (`field`, missing: empty, which no check
 * accepts). The schemas refuse a body with both.
 */
export function factorResponse (body: { credential?: unknown } & Record<string, unknown>, field = 'code'): FactorResponse {
  if (body.credential !== undefined) return { credential: body.credential }
  const code = body[field]
  return { code: typeof code === 'string' ? code : '' }
}

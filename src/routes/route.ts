import type { ContextConfigDefault, FastifyBaseLogger, FastifyInstance, FastifySchema, RawServerDefault, RouteGenericInterface, RouteOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FactorResponse } from '../handlers/base.js'

/** The routes' scope, typed from the TypeBox schemas: bodies and queries are what the schema says. */
export type AuthKitRoutes = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>

/** One route whose handler is typed from its `schema`. */
export type AuthKitRoute<Schema extends FastifySchema> =
  RouteOptions<RawServerDefault, IncomingMessage, ServerResponse, RouteGenericInterface, ContextConfigDefault, Schema, TypeBoxTypeProvider>

/**
 * Registers a route at its trailing-slash path (the documented one) and at the
 * same path without the slash (hidden from the OpenAPI document).
 */
export function bothSlashes<const Schema extends FastifySchema> (app: AuthKitRoutes, route: AuthKitRoute<Schema>): void {
  const url = route.url.endsWith('/') ? route.url : `${route.url}/`
  app.route({ ...route, url })
  app.route({ ...route, url: url.slice(0, -1), schema: { ...route.schema, hide: true } as Schema })
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

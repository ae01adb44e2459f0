import type { FastifyInstance, RouteGenericInterface, RouteOptions } from 'fastify'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'

/**
 * Registers a route at its trailing-slash path (the documented one) and at the
 * same path without the slash (hidden from the OpenAPI document).
 */
export function bothSlashes<RG extends RouteGenericInterface> (app: FastifyInstance, route: RouteOptions<Server, IncomingMessage, ServerResponse, RG>): void {
  const url = route.url.endsWith('/') ? route.url : `${route.url}/`
  app.route<RG>({ ...route, url })
  app.route<RG>({ ...route, url: url.slice(0, -1), schema: { ...route.schema, hide: true } as RouteOptions['schema'] })
}

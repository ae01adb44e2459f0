import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyPluginAsync, RouteOptions } from 'fastify'
import swagger, { type SwaggerTransform } from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { AjvCompiler } from '@fastify/ajv-compiler'
import { STATUS_CODES } from 'node:http'
import { ERROR_CODES } from './errors.js'

const DOCUMENTED_CODES = new Set<string>(ERROR_CODES)
import { resolveOptions, type AuthKitOptions, type ResolvedOptions } from './options.js'
import { openDatabase, migrateToLatest, requireMigrated } from './db/connect.js'
import { decoratorOf, type AuthKitDecorator, type AuthKitGuards, type SessionRow as AuthKitSession } from './core.js'
import { composeAuthKit, type AuthKitParts } from './compose.js'
import { Mailer } from './mail.js'
import { componentSchemas } from '../schemas/index.js'
import { BEARER_DESCRIPTION, DOCUMENT_TAGS, SWAGGER_UI_THEME, documentDescription, orderPathsBySession } from './docs.js'
import { loginRoutePlugin, secondFactorRoutePlugin } from './routes/login.js'
import { methodRoutePlugin } from './routes/methods.js'
import type { AuthKitUser } from './users.js'

/**
 * What `app.authKit.authenticate` puts on `request.user`: the record the user
 * store returns. A host adds its store's fields by merging this interface:
 * `declare module 'fastify-auth-kit' { interface AuthKitUserRecord { phone: string } }`.
 */
export interface AuthKitUserRecord extends AuthKitUser {}

/**
 * The plugin's part of `FastifyRequest`, inherited rather than declared, so that
 * a host's own @fastify/jwt can declare `request.user` too (two declarations of
 * one property must be identical, TS2717; an own property only has to fit the
 * inherited one). Such a host types the user through @fastify/jwt's `FastifyJWT`
 * as an `AuthKitUserRecord` (README, "Protecting your own routes").
 */
export interface AuthKitRequestFields {
  /** Set by `app.authKit.authenticate`: the user store's record. */
  user: AuthKitUserRecord
  /** Authentication methods of the access token: ["pwd"] or ["pwd", "mfa"]. */
  authKitAmr?: string[]
  /**
   * The session of the access token (its `sid`), set by `app.authKit.authenticate`;
   * `amr` and `authTime` (milliseconds) are the token's own claims.
   */
  authKitSession?: AuthKitSession
}

declare module 'fastify' {
  interface FastifyInstance {
    authKit: AuthKitDecorator
  }
  interface FastifyRequest extends AuthKitRequestFields {}
}

const API_VERSION = '0.1.0'
const BEARER_SCHEME = { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } as const
/**
 * @fastify/swagger-ui's own `staticCSP: true` refuses inline style attributes,
 * which Swagger UI's React components set: the console shows a CSP error. Inline
 * styles are allowed (never inline scripts); images may be data: URLs (the QR code).
 */
const SWAGGER_UI_CSP = "default-src 'self'; base-uri 'self'; font-src 'self' data:; frame-ancestors 'self'; img-src 'self' data: blob:; object-src 'none'; script-src 'self'; script-src-attr 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'"

/**
 * In a host's own document: the routes name the `bearerAuth` scheme, which the
 * host's options may not define (@fastify/swagger throws on an undefined
 * scheme), so it is added to each generated document, never to the host's options.
 */
const withBearerScheme: SwaggerTransform = ({ schema, url, ...document }) => {
  if ('openapiObject' in document) {
    const components = document.openapiObject.components ??= {}
    if (components.securitySchemes?.bearerAuth === undefined) components.securitySchemes = { ...components.securitySchemes, bearerAuth: BEARER_SCHEME }
  } else if (document.swaggerObject.securityDefinitions?.bearerAuth === undefined) {
    document.swaggerObject.securityDefinitions = { ...document.swaggerObject.securityDefinitions, bearerAuth: { type: 'apiKey', name: 'Authorization', in: 'header' } }
  }
  return { schema, url }
}

/**
 * The routes' scope: encapsulated, so its schemas, error handler and docs
 * stay its own (two instances can live side by side).
 */
async function authKitScope (scope: FastifyInstance, { options, parts, hostSwagger }: { options: ResolvedOptions, parts: AuthKitParts, hostSwagger: boolean }): Promise<void> {
  const { registry, login, tokens, account, users, methods, guards } = parts
  // The fields challenge–response methods (a passkey) add to the routes and components.
  const challengeResponse = registry.challengeResponseSchemas()
  if (!hostSwagger) for (const schema of componentSchemas(registry.list(), challengeResponse)) scope.addSchema(schema)
  else scope.addHook('onRoute', (route) => { route.config = { ...route.config, swaggerTransform: withBearerScheme } })

  if (options.docs !== false && !hostSwagger) {
    await scope.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: { title: 'fastify-auth-kit', description: documentDescription(options, registry.list()), version: API_VERSION },
        tags: DOCUMENT_TAGS,
        components: { securitySchemes: { bearerAuth: { ...BEARER_SCHEME, description: BEARER_DESCRIPTION } } },
      },
      // Component names from each schema's $id, not def-0, def-1, …
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      transformObject: (document) => orderPathsBySession('openapiObject' in document ? document.openapiObject : document.swaggerObject),
    })
    await scope.register(swaggerUi, {
      routePrefix: options.docs.routePrefix,
      // A reload keeps the pasted token (in the browser's localStorage).
      uiConfig: { persistAuthorization: true, displayRequestDuration: true },
      staticCSP: SWAGGER_UI_CSP,
      // Shows the QR code of GET /mfa/qr/ as a picture (src/docs.ts).
      theme: SWAGGER_UI_THEME,
    })
  }

  await scope.register(async (routes) => {
    // Rule 9: bodies are validated as sent, never coerced ("123456" only for a
    // string, never 123456), whatever the host's own Ajv options are.
    const buildValidator = AjvCompiler()
    routes.setValidatorCompiler((route) => {
      const external = routes.getSchemas() as Parameters<ReturnType<typeof AjvCompiler>>[0]
      return buildValidator(external, { customOptions: { coerceTypes: false } })(route)
    })
    routes.setErrorHandler((error: FastifyError & { retryAfter?: number, wwwAuthenticate?: string }, _request, reply) => {
      if (typeof error.retryAfter === 'number') reply.header('Retry-After', String(error.retryAfter))
      if (typeof error.wwwAuthenticate === 'string') reply.header('WWW-Authenticate', error.wwwAuthenticate)
      // An error without a status (a host plugin's, e.g. a rate limit that set the reply's code first) keeps the reply's.
      const status = error.statusCode ?? (reply.statusCode >= 400 ? reply.statusCode : 500)
      if (error.code === 'AUTH_KIT_DELIVERY_FAILED') {
        reply.log.warn({ cause: String((error as { deliveryError?: Error }).deliveryError?.message ?? '') }, 'fastify-auth-kit: code delivery failed')
      } else if (status >= 500) {
        // A database's or a library's own words never reach a client.
        reply.log.error({ err: error }, 'fastify-auth-kit: unexpected error')
        return reply.code(500).send({ statusCode: 500, error: 'Internal Server Error', message: 'Something went wrong on the server.' })
      }
      if (typeof error.code === 'string' && DOCUMENTED_CODES.has(error.code)) return reply.send(error)
      // Another plugin's error (a host's rate limit, say) has a code the documented
      // error schema does not list: sent as it is, past the response serializer.
      const envelope = { statusCode: status, code: error.code, error: (error as { error?: string }).error ?? STATUS_CODES[status] ?? 'Error', message: error.message }
      return reply.code(status).type('application/json; charset=utf-8').send(JSON.stringify(envelope))
    })
    // An unknown path under the prefix is answered here, so it too carries no-store.
    routes.setNotFoundHandler(async (request, reply) => reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `Route ${request.method}:${request.url.split('?')[0]} not found` }))
    // Tokens, codes, secrets and QR links must not sit in any cache.
    // A callback hook: it is on every answer, and an async one costs a promise each time.
    routes.addHook('onSend', (_request, reply, payload, done) => {
      reply.header('Cache-Control', 'no-store')
      reply.header('Pragma', 'no-cache')
      done(null, payload)
    })
    // Each route plugin gets the services it uses, and nothing else.
    await routes.register(loginRoutePlugin, { login, tokens, account, users, guards, registration: options.registration })
    if (!options.mfa.enabled) return
    await routes.register(secondFactorRoutePlugin, { login, account, guards, challengeResponse })
    await routes.register(methodRoutePlugin, { methods, account, guards, handlers: registry.classes(), challengeResponse, policies: options.mfa })
  }, { prefix: options.prefix })
}

/** Whether a route runs the plugin's authentication before its handler. */
function guardedByAuthKit (route: RouteOptions, guards: AuthKitGuards): boolean {
  return [route.onRequest, route.preValidation, route.preHandler].flat().some((hook) => hook === guards.authenticate || guards.isStepUpGuard(hook))
}

const plugin: FastifyPluginAsync<AuthKitOptions> = async (app, rawOptions) => {
  const options = resolveOptions(rawOptions)
  // Before the database: making a transport opens no connection and holds nothing to release.
  const mailer = options.email === undefined ? null : await Mailer.create(options.email)
  const { db, owned } = await openDatabase(options.database)
  try {
    if (options.migrate) await migrateToLatest(db)
    else await requireMigrated(db)
  } catch (err) {
    if (owned) await db.destroy()
    throw err
  }
  const parts = composeAuthKit({ db, options, mailer, log: app.log })
  for (const { name, users } of options.mfa.enabled ? await parts.methods.orphanedMethods() : []) {
    app.log.warn({ method: name, users }, `fastify-auth-kit: ${users} user(s) have an active "${name}" method, but no handler named "${name}" is in mfa.handlers: it is ignored, and users with no other method log in with their password alone`)
  }
  app.decorate('authKit', decoratorOf(parts))
  // `request.user` is set by authenticate without a decorator: a host's own
  // @fastify/jwt decorates `user` itself and must be able to register after us.
  if (!app.hasRequestDecorator('authKitAmr')) app.decorateRequest('authKitAmr', undefined)
  if (!app.hasRequestDecorator('authKitSession')) app.decorateRequest('authKitSession', undefined)
  app.addHook('onClose', async () => {
    parts.mailer?.close()
    if (owned) await db.destroy()
  })
  // With the host's own @fastify/swagger, the routes join its document.
  const hostSwagger = app.hasDecorator('swagger')
  if (hostSwagger) {
    for (const schema of componentSchemas(parts.registry.list(), parts.registry.challengeResponseSchemas())) app.addSchema(schema)
    // The host's own routes behind authenticate show the padlock in its document
    // (README, "Protecting your own routes"); a `security` of the host's own stands.
    app.addHook('onRoute', (route) => {
      if (!guardedByAuthKit(route, parts.guards) || route.schema?.security !== undefined) return
      route.schema = { ...route.schema, security: [{ bearerAuth: [] }] }
    })
  }
  await app.register(authKitScope, { options, parts, hostSwagger })
}

export const authKitMfa = fp(plugin, { name: 'fastify-auth-kit', fastify: '5.x' })
export default authKitMfa

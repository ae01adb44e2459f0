/**
 * The demo application, built but not listening: `examples/server.ts` runs it
 * for `npm start`, and the browser test of the page builds the same app with
 * its own database, clock and mail server. In an application outside this
 * repository, import from 'fastify-auth-kit' instead of '../src/index.js'.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { randomBytes } from 'node:crypto'
import authKitMfa, { AppHandler, EmailHandler, PasskeyHandler, type AuthKitOptions } from '../src/index.js'
import { createDevOutbox, type DevOutbox } from './dev-outbox.js'
import { servePage } from './page/serve.js'
import { SmsHandler, createSmsOutbox, DEMO_PHONE_NUMBER, type SmsOutbox } from './sms-handler.js'

export interface DemoOptions {
  /** The plugin's `secret`. */
  secret: string
  /** The plugin's `database`. */
  database: AuthKitOptions['database']
  /**
   * Where mails go. Default: the development outbox, kept in memory and shown
   * at `/dev/outbox` (then `mail` is that outbox).
   */
  email?: { transport: NonNullable<AuthKitOptions['email']>['transport'], from?: string }
  /**
   * Where the page is opened, for passkeys: WebAuthn accepts an answer only
   * from these origins, on the relying party `localhost` (so open the page as
   * http://localhost:PORT/, not 127.0.0.1). Default `['http://localhost:3000']`.
   */
  origins?: string[]
  /** The plugin's clock, in milliseconds. Default `Date.now`. */
  now?: () => number
  /** Fastify's own options (the logger). */
  fastify?: FastifyServerOptions
}

export interface Demo {
  app: FastifyInstance
  /** The `x-admin-token` the admin routes want. */
  adminToken: string
  /** The development outbox, unless `email` sent mails elsewhere. */
  mail: DevOutbox | null
  /** Texts the SMS method sent (to a fictional number). */
  texts: SmsOutbox
}

/**
 * The demo: the plugin with registration and the app, email, SMS and passkey methods,
 * the page at `/`, Swagger UI at `/api/docs`, development outboxes, a host
 * route behind `requireMfa` and the admin routes. Not `ready()` yet, so the
 * caller can add hooks first.
 */
export async function buildDemo (options: DemoOptions): Promise<Demo> {
  const app = Fastify(options.fastify ?? { logger: false })
  const mail = options.email === undefined ? createDevOutbox() : null
  const texts = createSmsOutbox(options.now === undefined ? {} : { now: options.now })

  await app.register(authKitMfa, {
    secret: options.secret,
    database: options.database,
    registration: true,
    email: { transport: options.email?.transport ?? mail!.transport, from: options.email?.from ?? 'Auth Kit Demo <no-reply@demo.invalid>' },
    // Browsers treat localhost as a secure context, so passkeys work there without TLS.
    webauthn: { rpID: 'localhost', rpName: 'Auth Kit Demo', origins: options.origins ?? ['http://localhost:3000'] },
    mfa: {
      // The demo's users have no phone number of their own: texts go to a fictional one.
      handlers: [AppHandler, EmailHandler, SmsHandler.withGateway(texts.gateway, { fallbackNumber: DEMO_PHONE_NUMBER }), PasskeyHandler],
      applicationName: 'Auth Kit Demo',
    },
    ...(options.now === undefined ? {} : { now: options.now }),
  })

  // Development pages that show sent codes: never in production.
  mail?.register(app, '/dev/outbox')
  texts.register(app, '/dev/sms')

  // A route of the host's own, behind the plugin's authentication.
  app.get('/api/hello', { preHandler: app.authKit.authenticate, schema: { hide: true } }, async (request) => ({ hello: request.user.username }))
  // A sensitive action: a second factor checked within the last five minutes (step-up).
  app.post('/api/demo-action', { preHandler: app.authKit.requireMfa({ maxAge: 300 }), schema: { hide: true } }, async () => ({ done: true }))

  // Support staff's tools behind a guard of the host's own. The demo's guard is a
  // header with a token printed at startup; a real host checks its own admin role.
  const adminToken = randomBytes(16).toString('base64url')
  const adminOnly = async (request: { headers: Record<string, unknown> }) => {
    if (request.headers['x-admin-token'] !== adminToken) throw Object.assign(new Error('Admins only.'), { statusCode: 403 })
  }
  app.get<{ Params: { id: string } }>('/admin/users/:id/methods', { preHandler: adminOnly, schema: { hide: true } }, async (request) => app.authKit.admin.listMethods(request.params.id))
  for (const action of ['resetMfa', 'unlock', 'revokeSessions'] as const) {
    app.post<{ Params: { id: string } }>(`/admin/users/:id/${action}`, { preHandler: adminOnly, schema: { hide: true } }, async (request, reply) => {
      await app.authKit.admin[action](request.params.id)
      return reply.code(204).send()
    })
  }

  await servePage(app, { prefix: '/api/auth', demoAction: '/api/demo-action' })
  return { app, adminToken, mail, texts }
}

import t from 'tap'
import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import SwaggerParser from '@apidevtools/swagger-parser'
import authKitMfa, { AppHandler, EmailHandler, MfaHandler } from '../src/index.js'
import { buildApp, SECRET } from './helpers/app.js'

/** A dispatching method of the host's own, to show the enum follows `mfa.handlers`. */
class SmsHandler extends MfaHandler {
  static override NAME = 'sms'
  override async sendCode (): Promise<void> {
    await this.getOtpCode()
  }
}

// SPEC section 3: every route, and the error codes (with their status) its documented
// responses must name. Section 4 lists when each code is given; section 5 adds the rules.
const routes: Record<string, Record<string, Array<[number, string]>>> = {
  '/api/auth/login/': { post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_INVALID_CREDENTIALS']] },
  '/api/auth/login/verify/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN'], [401, 'AUTH_KIT_INVALID_CODE'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/login/change-method/': {
    post: [[400, 'FST_ERR_VALIDATION'], [400, 'AUTH_KIT_SAME_METHOD'], [401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [503, 'AUTH_KIT_DELIVERY_FAILED']],
  },
  '/api/auth/login/resend/': {
    post: [[400, 'FST_ERR_VALIDATION'], [400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE'], [401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN'], [429, 'AUTH_KIT_RESEND_TOO_SOON'], [503, 'AUTH_KIT_DELIVERY_FAILED']],
  },
  '/api/auth/token/refresh/': { post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_INVALID_REFRESH_TOKEN']] },
  '/api/auth/logout/': { post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED']] },
  '/api/auth/user/': { get: [[401, 'AUTH_KIT_UNAUTHORIZED']] },
  '/api/auth/registration/': { post: [[400, 'FST_ERR_VALIDATION'], [409, 'AUTH_KIT_USERNAME_TAKEN']] },
  '/api/auth/mfa/': {
    get: [[401, 'AUTH_KIT_UNAUTHORIZED']],
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [409, 'AUTH_KIT_METHOD_EXISTS'], [503, 'AUTH_KIT_DELIVERY_FAILED']],
  },
  '/api/auth/mfa/confirm/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_INVALID_CODE'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [409, 'AUTH_KIT_METHOD_ALREADY_ACTIVE'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/mfa/primary/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_INVALID_CODE'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/mfa/deactivate/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED'], [403, 'AUTH_KIT_INVALID_CODE'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/mfa/delete/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_ACTIVE_METHOD_PROTECTED'], [403, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED'], [403, 'AUTH_KIT_INVALID_CODE'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/mfa/send/': {
    post: [[400, 'FST_ERR_VALIDATION'], [400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE'], [401, 'AUTH_KIT_UNAUTHORIZED'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_RESEND_TOO_SOON'], [503, 'AUTH_KIT_DELIVERY_FAILED']],
  },
  '/api/auth/mfa/backup-codes/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_INVALID_CODE'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
}

// SPEC section 4, every code.
const errorCodes = [
  'FST_ERR_VALIDATION', 'AUTH_KIT_SAME_METHOD', 'AUTH_KIT_METHOD_NOT_DISPATCHABLE', 'AUTH_KIT_INVALID_CREDENTIALS',
  'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'AUTH_KIT_INVALID_CODE', 'AUTH_KIT_UNAUTHORIZED', 'AUTH_KIT_INVALID_REFRESH_TOKEN',
  'AUTH_KIT_PRIMARY_METHOD_PROTECTED', 'AUTH_KIT_ACTIVE_METHOD_PROTECTED', 'AUTH_KIT_METHOD_NOT_FOUND', 'AUTH_KIT_METHOD_EXISTS',
  'AUTH_KIT_METHOD_ALREADY_ACTIVE', 'AUTH_KIT_USERNAME_TAKEN', 'AUTH_KIT_TOO_MANY_ATTEMPTS', 'AUTH_KIT_RESEND_TOO_SOON',
  'AUTH_KIT_DELIVERY_FAILED',
]

const withEmail = {
  email: { transport: { jsonTransport: true }, from: 'no-reply@example.com' },
  mfa: { handlers: [AppHandler, EmailHandler, SmsHandler] },
}

async function documentOf (options: Record<string, unknown>, url = '/api/docs/json') {
  const app = await buildApp({ docs: {}, ...options })
  const res = await app.inject({ method: 'GET', url })
  await app.close()
  return { status: res.statusCode, doc: res.statusCode === 200 ? res.json() : undefined }
}

t.test('with docs on, /api/docs/json is a valid OpenAPI 3 document', async (t) => {
  const { status, doc } = await documentOf(withEmail)
  t.equal(status, 200)
  t.match(doc.openapi, /^3\./)
  await t.resolves(SwaggerParser.validate(structuredClone(doc)), 'swagger-parser accepts it')

  t.test('shared schemas are named components, never def-N', async (t) => {
    const names = Object.keys(doc.components.schemas)
    for (const name of ['AuthKitError', 'AuthKitTokens', 'AuthKitUser', 'AuthKitMethodName', 'AuthKitDetail', 'AuthKitMethod']) {
      t.ok(names.includes(name), `components.schemas has ${name}`)
    }
    t.notOk(names.some((n) => /^def-\d+$/.test(n)), `no def-N component (${names.join(', ')})`)
    t.notMatch(JSON.stringify(doc), /#\/components\/schemas\/def-\d+/, 'no $ref to a def-N name')
  })

  t.test('the tags are login and methods', async (t) => {
    const tags = (doc.tags as Array<{ name: string }>).map((tag) => tag.name)
    t.same(tags.sort(), ['login', 'methods'])
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { tags: string[] }>>)) {
      for (const [verb, op] of Object.entries(operations)) {
        const expected = path.startsWith('/api/auth/mfa/') ? 'methods' : 'login'
        t.same(op.tags, [expected], `${verb.toUpperCase()} ${path} is tagged ${expected}`)
      }
    }
  })

  t.test('every route is at its trailing-slash path, never slash-less', async (t) => {
    t.same(Object.keys(doc.paths).sort(), Object.keys(routes).sort())
    for (const [path, operations] of Object.entries(routes)) {
      t.same(Object.keys(doc.paths[path]).sort(), Object.keys(operations).sort(), `${path} has ${Object.keys(operations).join(', ')}`)
      t.notOk(path.slice(0, -1) in doc.paths, `${path.slice(0, -1)} is hidden`)
    }
  })

  t.test('every error code of section 4 is in the document', async (t) => {
    const text = JSON.stringify(doc)
    for (const code of errorCodes) t.ok(text.includes(code), code)
    const envelope = doc.components.schemas.AuthKitError
    t.same(envelope.required.sort(), ['code', 'error', 'message', 'statusCode'])
    for (const code of errorCodes) t.ok(envelope.properties.code.enum.includes(code), `AuthKitError.code lists ${code}`)
  })

  t.test("each route's documented responses name its error codes", async (t) => {
    for (const [path, operations] of Object.entries(routes)) {
      for (const [verb, codes] of Object.entries(operations)) {
        const responses = doc.paths[path][verb].responses
        for (const [status, code] of codes) {
          const response = responses[String(status)]
          t.ok(response, `${verb.toUpperCase()} ${path} documents ${status}`)
          t.match(response?.description ?? '', code, `${verb.toUpperCase()} ${path} ${status} names ${code}`)
          t.equal(response?.content?.['application/json']?.schema?.$ref, '#/components/schemas/AuthKitError', `${verb.toUpperCase()} ${path} ${status} is the error envelope`)
        }
        // Nothing documented beyond what section 4 defines for that status.
        for (const [status, response] of Object.entries(responses as Record<string, { description: string }>)) {
          if (Number(status) < 400) continue
          const named = response.description.match(/[A-Z][A-Z_]+[A-Z]/g) ?? []
          t.ok(named.length > 0, `${verb.toUpperCase()} ${path} ${status} names at least one code`)
        }
      }
    }
  })

  t.test('the method enum equals the configured handlers, in order', async (t) => {
    t.same(doc.components.schemas.AuthKitMethodName.enum, ['app', 'email', 'sms'])
    const body = doc.paths['/api/auth/mfa/'].post.requestBody.content['application/json'].schema
    t.equal(body.properties.method.$ref, '#/components/schemas/AuthKitMethodName')
    const change = doc.paths['/api/auth/login/change-method/'].post.requestBody.content['application/json'].schema
    t.equal(change.properties.new_method.$ref, '#/components/schemas/AuthKitMethodName')
  })

  t.test('the routes that need auth say so', async (t) => {
    t.ok(doc.components.securitySchemes.bearerAuth)
    for (const [path, verb] of [['/api/auth/user/', 'get'], ['/api/auth/logout/', 'post'], ['/api/auth/mfa/', 'get'], ['/api/auth/mfa/confirm/', 'post']]) {
      t.same(doc.paths[path][verb].security, [{ bearerAuth: [] }], `${verb.toUpperCase()} ${path}`)
    }
    t.notOk(doc.paths['/api/auth/login/'].post.security, 'login needs none')
  })
})

t.test('the method enum follows mfa.handlers', async (t) => {
  const { doc } = await documentOf({ mfa: { handlers: [AppHandler] } })
  t.same(doc.components.schemas.AuthKitMethodName.enum, ['app'])
  await t.resolves(SwaggerParser.validate(structuredClone(doc)))
})

t.test('the document follows the options: registration off, mfa off', async (t) => {
  const noRegistration = await documentOf({ registration: false })
  t.notOk('/api/auth/registration/' in noRegistration.doc.paths)
  const noMfa = await documentOf({ mfa: { enabled: false } })
  t.same(Object.keys(noMfa.doc.paths).sort(), ['/api/auth/login/', '/api/auth/logout/', '/api/auth/registration/', '/api/auth/token/refresh/', '/api/auth/user/'])
  await t.resolves(SwaggerParser.validate(structuredClone(noMfa.doc)))
})

t.test('GET /api/docs serves the real Swagger UI', async (t) => {
  const app = await buildApp({ docs: {} })
  t.teardown(() => app.close())
  const page = await app.inject({ method: 'GET', url: '/api/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /<div id="swagger-ui"><\/div>/)
  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+\.(?:js|css))"/g)].map((m) => m[1])
  t.ok(assets.some((a) => a.endsWith('/swagger-ui-bundle.js')), 'the page loads swagger-ui-bundle.js')
  for (const asset of assets) {
    t.ok(asset.startsWith('/api/docs/'), `${asset} is under the docs prefix`)
    const res = await app.inject({ method: 'GET', url: asset })
    t.equal(res.statusCode, 200, `${asset} answers 200`)
    t.ok(res.body.length > 0, `${asset} is not empty`)
  }
  const bundle = await app.inject({ method: 'GET', url: '/api/docs/static/swagger-ui-bundle.js' })
  t.match(bundle.body, /SwaggerUIBundle/)
  const initializer = await app.inject({ method: 'GET', url: '/api/docs/static/swagger-initializer.js' })
  t.match(initializer.body, /\.\/json/, 'the UI reads the document beside it')
})

t.test('docs: false serves neither the UI nor the document', async (t) => {
  const app = await buildApp({ docs: false })
  t.teardown(() => app.close())
  for (const url of ['/api/docs', '/api/docs/', '/api/docs/json', '/api/docs/static/swagger-ui-bundle.js']) {
    t.equal((await app.inject({ method: 'GET', url })).statusCode, 404, url)
  }
  const login = await app.inject({ method: 'POST', url: '/api/auth/login/', payload: { username: 'nobody', password: 'wrong' } })
  t.equal(login.statusCode, 401, 'the routes still work')
})

t.test('docs.routePrefix moves the UI and the document', async (t) => {
  const app = await buildApp({ docs: { routePrefix: '/reference' } })
  t.teardown(() => app.close())
  const page = await app.inject({ method: 'GET', url: '/reference' })
  t.equal(page.statusCode, 200)
  t.match(page.body, /\/reference\/static\/swagger-ui-bundle\.js/)
  t.equal((await app.inject({ method: 'GET', url: '/reference/static/swagger-ui-bundle.js' })).statusCode, 200)
  const json = await app.inject({ method: 'GET', url: '/reference/json' })
  t.equal(json.statusCode, 200)
  t.ok('/api/auth/login/' in json.json().paths)
  t.equal((await app.inject({ method: 'GET', url: '/api/docs' })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: '/api/docs/json' })).statusCode, 404)
})

t.test('a host with its own @fastify/swagger gets the routes in its document, and no UI from the plugin', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { openapi: '3.0.3', info: { title: 'host', version: '1.0.0' } } })
  app.get('/health', { schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }))
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:', registration: true })
  await app.ready()
  const doc = app.swagger() as any
  t.equal(doc.info.title, 'host', "it is the host's document")
  t.ok('/health' in doc.paths, "the host's route is there")
  for (const path of Object.keys(routes)) t.ok(path in doc.paths, `${path} joined it`)
  t.notOk('/api/auth/login' in doc.paths, 'slash-less duplicates stay hidden')
  await t.resolves(SwaggerParser.validate(structuredClone(doc)), 'still valid')
  t.equal((await app.inject({ method: 'GET', url: '/api/docs' })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: '/api/docs/json' })).statusCode, 404)
  const login = await app.inject({ method: 'POST', url: '/api/auth/login/', payload: { username: 'nobody', password: 'wrong' } })
  t.equal(login.statusCode, 401)
  t.equal(login.json().code, 'AUTH_KIT_INVALID_CREDENTIALS')
})

t.test("a host whose refResolver names components by $id gets the plugin's names", async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(swagger, {
    openapi: { openapi: '3.0.3', info: { title: 'host', version: '1.0.0' } },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  })
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:' })
  await app.ready()
  const doc = app.swagger() as any
  for (const name of ['AuthKitError', 'AuthKitTokens', 'AuthKitUser', 'AuthKitMethodName']) t.ok(name in doc.components.schemas, name)
  t.equal(doc.paths['/api/auth/login/verify/'].post.responses['401'].content['application/json'].schema.$ref, '#/components/schemas/AuthKitError')
  await t.resolves(SwaggerParser.validate(structuredClone(doc)))
})

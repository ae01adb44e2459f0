import t from 'tap'
import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import SwaggerParser from '@apidevtools/swagger-parser'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'
import authKitMfa, { AppHandler, AuthKitErrors, EmailHandler, MfaHandler } from '../src/index.js'
import { componentSchemas, loginRouteSchemas, methodRouteSchemas, LoginDone, LoginMfaStarted, LoginSetupRequired } from '../schemas/index.js'
import { buildApp, get, newUser, post, SECRET, userWithApp, clockedApp } from './helpers/app.js'

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
  '/api/auth/login/': { post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_INVALID_CREDENTIALS'], [422, 'AUTH_KIT_NO_EMAIL_ADDRESS'], [429, 'AUTH_KIT_LOGIN_THROTTLED'], [503, 'AUTH_KIT_DELIVERY_FAILED']] },
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
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [401, 'AUTH_KIT_STEP_UP_REQUIRED'], [409, 'AUTH_KIT_METHOD_EXISTS'], [503, 'AUTH_KIT_DELIVERY_FAILED']],
  },
  '/api/auth/mfa/confirm/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [401, 'AUTH_KIT_STEP_UP_REQUIRED'], [403, 'AUTH_KIT_INVALID_CODE'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [409, 'AUTH_KIT_METHOD_ALREADY_ACTIVE'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/mfa/primary/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [401, 'AUTH_KIT_STEP_UP_REQUIRED'], [403, 'AUTH_KIT_INVALID_CODE'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/mfa/deactivate/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [401, 'AUTH_KIT_STEP_UP_REQUIRED'], [403, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED'], [403, 'AUTH_KIT_INVALID_CODE'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/mfa/delete/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [401, 'AUTH_KIT_STEP_UP_REQUIRED'], [403, 'AUTH_KIT_ACTIVE_METHOD_PROTECTED'], [403, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED'], [403, 'AUTH_KIT_INVALID_CODE'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
  '/api/auth/mfa/send/': {
    post: [[400, 'FST_ERR_VALIDATION'], [400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE'], [401, 'AUTH_KIT_UNAUTHORIZED'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_RESEND_TOO_SOON'], [503, 'AUTH_KIT_DELIVERY_FAILED']],
  },
  '/api/auth/mfa/backup-codes/': {
    post: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [401, 'AUTH_KIT_STEP_UP_REQUIRED'], [403, 'AUTH_KIT_INVALID_CODE'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']],
  },
}

// SPEC section 4, every code and the statuses it comes with (written out here
// from the contract, not imported from the schemas that are under test).
const specErrors: Record<string, number[]> = {
  FST_ERR_VALIDATION: [400], AUTH_KIT_SAME_METHOD: [400], AUTH_KIT_METHOD_NOT_DISPATCHABLE: [400],
  AUTH_KIT_INVALID_CREDENTIALS: [401], AUTH_KIT_INVALID_EPHEMERAL_TOKEN: [401], AUTH_KIT_INVALID_CODE: [401, 403],
  AUTH_KIT_UNAUTHORIZED: [401], AUTH_KIT_INVALID_REFRESH_TOKEN: [401], AUTH_KIT_STEP_UP_REQUIRED: [401],
  AUTH_KIT_MFA_SETUP_REQUIRED: [403], AUTH_KIT_PRIMARY_METHOD_PROTECTED: [403], AUTH_KIT_ACTIVE_METHOD_PROTECTED: [403],
  AUTH_KIT_METHOD_NOT_FOUND: [404], AUTH_KIT_METHOD_EXISTS: [409], AUTH_KIT_METHOD_ALREADY_ACTIVE: [409], AUTH_KIT_USERNAME_TAKEN: [409],
  AUTH_KIT_NO_EMAIL_ADDRESS: [422], AUTH_KIT_LOGIN_THROTTLED: [429], AUTH_KIT_TOO_MANY_ATTEMPTS: [429], AUTH_KIT_RESEND_TOO_SOON: [429],
  AUTH_KIT_DELIVERY_FAILED: [503],
}
const errorCodes = Object.keys(specErrors)

// Routes of SPEC 0.2 whose handlers are not in this branch yet: their schema
// objects are checked directly, and in the document once they are registered.
const newRoutes: Record<string, { key: string, verb: string, path: string, tag: string, errors: Array<[number, string]> }> = {
  stepUp: { key: 'stepUp', verb: 'post', path: '/api/auth/login/step-up/', tag: 'login', errors: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_INVALID_CODE'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED'], [404, 'AUTH_KIT_METHOD_NOT_FOUND'], [429, 'AUTH_KIT_TOO_MANY_ATTEMPTS']] },
  sessions: { key: 'sessions', verb: 'get', path: '/api/auth/sessions/', tag: 'sessions and devices', errors: [[401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED']] },
  revokeSession: { key: 'revokeSession', verb: 'post', path: '/api/auth/sessions/revoke/', tag: 'sessions and devices', errors: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED']] },
  revokeOtherSessions: { key: 'revokeOtherSessions', verb: 'post', path: '/api/auth/sessions/revoke-others/', tag: 'sessions and devices', errors: [[401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED']] },
  devices: { key: 'devices', verb: 'get', path: '/api/auth/devices/', tag: 'sessions and devices', errors: [[401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED']] },
  revokeDevice: { key: 'revokeDevice', verb: 'post', path: '/api/auth/devices/revoke/', tag: 'sessions and devices', errors: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [403, 'AUTH_KIT_MFA_SETUP_REQUIRED']] },
  qr: { key: 'qr', verb: 'get', path: '/api/auth/mfa/qr/', tag: 'methods', errors: [[400, 'FST_ERR_VALIDATION'], [401, 'AUTH_KIT_UNAUTHORIZED'], [401, 'AUTH_KIT_STEP_UP_REQUIRED'], [404, 'AUTH_KIT_METHOD_NOT_FOUND']] },
}

// SPEC section 11: the order of a real session (Swagger UI lists operations in document order).
const sessionOrder = [
  'post /registration/', 'post /login/', 'post /login/verify/', 'post /login/change-method/', 'post /login/resend/', 'get /user/',
  'post /token/refresh/', 'post /login/step-up/', 'post /logout/',
  'get /mfa/', 'post /mfa/', 'get /mfa/qr/', 'post /mfa/confirm/', 'post /mfa/send/', 'post /mfa/primary/', 'post /mfa/backup-codes/',
  'post /mfa/deactivate/', 'post /mfa/delete/',
  'get /sessions/', 'post /sessions/revoke/', 'post /sessions/revoke-others/', 'get /devices/', 'post /devices/revoke/',
]
const tagOf = (path: string): string => (path.startsWith('/api/auth/mfa/') ? 'methods' : /^\/api\/auth\/(sessions|devices)\//.test(path) ? 'sessions and devices' : 'login')

/** Ajv as Fastify builds it for the plugin's routes, but with no coercion (rule 9) and nothing removed. */
function strictAjv (methodNames: string[]) {
  const ajv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: true, addUsedSchema: false, strict: false })
  addFormats.default(ajv)
  for (const schema of componentSchemas(methodNames)) ajv.addSchema(schema)
  return ajv
}

const methodSchemaOptions = (names: string[]) => ({
  setupSchemas: [AppHandler, EmailHandler, SmsHandler].filter((h) => names.includes(h.NAME)).map((h) => ({ name: h.NAME, schema: h.setupDataSchema })),
  deleteActiveMethodRequireCode: true,
  updatePrimaryMethodRequirePrimaryCode: true,
})

/** Every route schema object, by key: what the routes are registered with. */
function allRouteSchemas (names: string[]): Record<string, Record<string, any>> {
  const methods = methodRouteSchemas(methodSchemaOptions(names))
  return { ...loginRouteSchemas, ...Object.fromEntries(Object.entries(methods).map(([k, v]) => [`methods.${k}`, v])) }
}

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

  t.test('the tags are login, methods, sessions and devices, in that order', async (t) => {
    t.same((doc.tags as Array<{ name: string }>).map((tag) => tag.name), ['login', 'methods', 'sessions and devices'])
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, { tags: string[] }>>)) {
      for (const [verb, op] of Object.entries(operations)) t.same(op.tags, [tagOf(path)], `${verb.toUpperCase()} ${path} is tagged ${tagOf(path)}`)
    }
  })

  t.test('every route is at its trailing-slash path, never slash-less', async (t) => {
    const known = new Set([...Object.keys(routes), ...Object.values(newRoutes).map((r) => r.path)])
    for (const path of Object.keys(doc.paths)) t.ok(known.has(path), `${path} is a route of SPEC section 3`)
    for (const [path, operations] of Object.entries(routes)) {
      t.same(Object.keys(doc.paths[path] ?? {}).sort(), Object.keys(operations).sort(), `${path} has ${Object.keys(operations).join(', ')}`)
      t.notOk(path.slice(0, -1) in doc.paths, `${path.slice(0, -1)} is hidden`)
    }
  })

  t.test('the routes are in the order of a real session', async (t) => {
    const inDocument = Object.entries(doc.paths as Record<string, object>).flatMap(([path, item]) => Object.keys(item).map((verb) => `${verb} ${path.replace('/api/auth', '')}`))
    t.same(inDocument, sessionOrder.filter((op) => inDocument.includes(op)))
  })

  t.test('every operation has a summary, a description and a unique operationId', async (t) => {
    const ids: string[] = []
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [verb, op] of Object.entries(item)) {
        const name = `${verb.toUpperCase()} ${path}`
        t.ok(typeof op.summary === 'string' && op.summary.length > 10, `${name} has a summary`)
        t.ok(typeof op.description === 'string' && op.description.length > 20, `${name} has a description`)
        t.match(op.operationId, /^[a-z][A-Za-z]+$/, `${name} has an operationId`)
        ids.push(op.operationId)
      }
    }
    t.equal(new Set(ids).size, ids.length, `operationIds are unique (${ids.join(', ')})`)
  })

  t.test('every response has a description, and every answer with a body an example', async (t) => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [verb, op] of Object.entries(item)) {
        for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
          const name = `${verb.toUpperCase()} ${path} ${status}`
          t.ok(response.description !== '' && response.description !== 'Default Response', `${name} is described: ${response.description}`)
          if (status === '204') {
            t.notOk(response.content, `${name} has no body`)
            continue
          }
          const media = Object.values(response.content ?? {})[0] as { example?: unknown, examples?: object } | undefined
          t.ok(media?.example !== undefined || Object.keys(media?.examples ?? {}).length > 0, `${name} has an example`)
        }
      }
    }
  })

  t.test('every request body has an example, and it passes the route\'s own schema', async (t) => {
    const ajv = strictAjv(['app', 'email', 'sms'])
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [verb, op] of Object.entries(item)) {
        if (op.requestBody === undefined) continue
        const name = `${verb.toUpperCase()} ${path}`
        const example = op.requestBody.content['application/json'].example
        t.ok(example !== undefined, `${name} has a request example`)
        const schema = Object.values(allRouteSchemas(['app', 'email', 'sms'])).find((s) => s.operationId === op.operationId)
        t.ok(schema?.body, `${name}: its schema object is found by operationId`)
        const validate = ajv.compile(schema!.body)
        t.ok(validate(structuredClone(example)), `${name}: ${JSON.stringify(example)} passes (${ajv.errorsText(validate.errors)})`)
      }
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
          const media = response?.content?.['application/json']
          t.equal(media?.schema?.allOf?.[0]?.$ref, '#/components/schemas/AuthKitError', `${verb.toUpperCase()} ${path} ${status} is the error envelope`)
          t.same(media?.examples?.[code]?.value, { statusCode: status, code, error: media?.examples?.[code]?.value?.error, message: media?.examples?.[code]?.value?.message }, `${verb.toUpperCase()} ${path} ${status} shows an example of ${code} with its own status`)
        }
        // Nothing documented beyond what section 4 defines for that status.
        for (const [status, response] of Object.entries(responses as Record<string, any>)) {
          if (Number(status) < 400) continue
          const named = response.description.match(/[A-Z][A-Z_]+[A-Z]/g) ?? []
          t.ok(named.length > 0, `${verb.toUpperCase()} ${path} ${status} names at least one code`)
          for (const code of named) t.ok(specErrors[code]?.includes(Number(status)), `${verb.toUpperCase()} ${path}: SPEC gives ${code} with ${status}`)
          const examples = Object.values(response.content['application/json'].examples ?? {}) as Array<{ value: any }>
          t.same(examples.map((e) => e.value.code).sort(), [...named].sort(), `${verb.toUpperCase()} ${path} ${status}: one example per code`)
          for (const { value } of examples) {
            t.equal(value.statusCode, Number(status), `${verb.toUpperCase()} ${path} ${value.code} example has statusCode ${status}`)
            t.ok(typeof value.error === 'string' && value.error !== '' && typeof value.message === 'string' && value.message !== '', `${verb.toUpperCase()} ${path} ${value.code} example has an error and a message`)
          }
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

t.test('every documented error message is one the routes really answer with', async (t) => {
  const { doc } = await documentOf(withEmail)
  // The templates of src/errors.ts, a `%s` or `%d` standing for any text.
  const templates = Object.values(AuthKitErrors).map((E) => {
    const sample = new (E as new () => { code: string, statusCode: number, message: string })()
    const pattern = sample.message.split(/%[sd]/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+')
    return { code: sample.code, status: sample.statusCode, pattern: new RegExp(`^${pattern}$`) }
  })
  const app = await buildApp()
  t.teardown(() => app.close())
  const validation = await post(app, '/login/verify/', { ephemeral_token: 'x', code: 123456 })
  // A route whose bad input is a query, not a body: its own answer to a method that is not configured.
  const user = await newUser(app)
  const queryValidation = await get(app, '/mfa/qr/?method=nope', user.access)
  t.equal(queryValidation.body.code, 'FST_ERR_VALIDATION')
  const seen = new Set<string>()
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [verb, op] of Object.entries(item)) {
      for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
        if (Number(status) < 400) continue
        for (const { value } of Object.values(response.content['application/json'].examples) as Array<{ value: any }>) {
          const key = `${status} ${value.code} ${value.message}`
          if (seen.has(key)) continue
          seen.add(key)
          if (value.code === 'FST_ERR_VALIDATION' && op.requestBody === undefined) {
            t.equal(value.message, queryValidation.body.message, `${verb.toUpperCase()} ${path}: no body, so the validation example is Fastify's own words for a bad query`)
            continue
          }
          if (value.code === 'FST_ERR_VALIDATION') {
            t.equal(value.message, validation.body.message, `${verb.toUpperCase()} ${path}: the validation example is Fastify's own words for a number where a code goes`)
            continue
          }
          t.ok(templates.some((e) => e.code === value.code && e.status === Number(status) && e.pattern.test(value.message)), `${key} is a message the routes send`)
        }
      }
    }
  }
  t.ok(seen.has('429 AUTH_KIT_TOO_MANY_ATTEMPTS Too many wrong codes. Try again in 15 minutes.'), 'the lock example says how long in words')
})

t.test('GET /mfa/qr/ documents an SVG document as its 200 example, and its 400 as the route answers it', async (t) => {
  const { doc } = await documentOf(withEmail)
  const op = doc.paths['/api/auth/mfa/qr/'].get
  t.equal(op.requestBody, undefined, 'the route takes no body')
  const svg = op.responses['200'].content['image/svg+xml']
  t.equal(svg.schema.type, 'string')
  t.match(svg.example, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="[\d ]+"[^>]*>.*<\/svg>$/s, 'the example is an SVG document, as a string')
  const { app, clock } = await clockedApp(t, withEmail)
  const user = await userWithApp(app, clock)
  const bad = await get(app, '/mfa/qr/?method=nope', user.access)
  const example = op.responses['400'].content['application/json'].examples.FST_ERR_VALIDATION.value
  t.same(example, bad.body, 'the 400 example is what the route answers for a method that is not configured')
  t.notMatch(example.message, /^body\//, 'and names no body field')
})

t.test("Swagger UI's plugin shows a string example of an XML media type as it is", async (t) => {
  // Swagger UI builds the example of an XML media type (image/svg+xml) from the
  // schema and, for a string schema, shows "XML example cannot be generated";
  // the plugin's script gives it the documented example instead.
  const app = await buildApp({ docs: {} })
  t.teardown(() => app.close())
  const script = (await app.inject({ method: 'GET', url: '/api/docs/static/theme/auth-kit-svg-answers.js' })).body
  const plugins: Array<(system: unknown) => any> = []
  const bundle = (config: { plugins: typeof plugins }) => { plugins.push(...config.plugins) }
  const window: Record<string, unknown> = { SwaggerUIBundle: bundle }
  new Function('window', script)(window)
  ;(window.SwaggerUIBundle as typeof bundle)({ plugins: [] })
  const builtIn = (_schema: unknown, _config: unknown, example: unknown) => `built from the schema (${String(example)})`
  const plugin = plugins[0]({ React: {}, fn: { getXmlSampleSchema: builtIn } })
  const shown = plugin.fn?.getXmlSampleSchema
  t.type(shown, 'function', 'the plugin replaces how an XML example is made')
  const svg = '<svg xmlns="http://www.w3.org/2000/svg"/>'
  t.equal(shown?.({ type: 'string' }, {}, svg), svg, 'a string example is shown as it is')
  t.equal(shown?.({ type: 'object', xml: { name: 'x' } }, {}, undefined), 'built from the schema (undefined)', 'without one, Swagger UI builds it as before')
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
  // Sessions are not an MFA route: they stay; remembered devices only skip a second step, so they go.
  t.same(Object.keys(noMfa.doc.paths).sort(), ['/api/auth/login/', '/api/auth/logout/', '/api/auth/registration/', '/api/auth/sessions/', '/api/auth/sessions/revoke-others/', '/api/auth/sessions/revoke/', '/api/auth/token/refresh/', '/api/auth/user/'])
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
  t.equal(doc.paths['/api/auth/login/verify/'].post.responses['401'].content['application/json'].schema.allOf[0].$ref, '#/components/schemas/AuthKitError')
  await t.resolves(SwaggerParser.validate(structuredClone(doc)))
})

t.test('POST /login/ documents both shapes of its success, and the setup-only one', async (t) => {
  const { doc } = await documentOf(withEmail)
  const ok = doc.paths['/api/auth/login/'].post.responses['200']
  const media = ok.content['application/json']
  t.same(media.schema.oneOf.map((s: { $ref: string }) => s.$ref), [
    '#/components/schemas/AuthKitLoginMfaStarted', '#/components/schemas/AuthKitLoginDone', '#/components/schemas/AuthKitLoginSetupRequired',
  ])
  const examples = Object.values(media.examples) as Array<{ value: Record<string, unknown> }>
  const ajv = strictAjv(['app', 'email', 'sms'])
  const shapes = [LoginMfaStarted, LoginDone, LoginSetupRequired].map((shape) => ajv.compile(shape))
  t.equal(examples.length, 3, 'one example per shape')
  for (const { value } of examples) {
    const fits = shapes.map((validate) => validate(structuredClone(value)))
    t.equal(fits.filter(Boolean).length, 1, `${JSON.stringify(value).slice(0, 60)}… fits exactly one shape`)
  }
  t.ok(examples.some(({ value }) => value.mfa_enabled === true && typeof value.ephemeral_token === 'string'), 'the MFA challenge')
  t.ok(examples.some(({ value }) => value.mfa_enabled === false && typeof value.refresh === 'string'), 'the tokens of a one-step login')
  t.ok(examples.some(({ value }) => value.mfa_setup_required === true && value.refresh === undefined), 'the setup-only token')
  t.same(Object.keys(doc.components.schemas.AuthKitUser.properties), ['id', 'username', 'email'], 'the user schema shows the real fields')
  t.same(doc.components.schemas.AuthKitUser.example, { id: doc.components.schemas.AuthKitUser.example.id, username: 'alice', email: 'alice@example.com' })

  t.test('the real answers of POST /login/ have the documented shapes', async (t) => {
    const { app, clock } = await clockedApp(t)
    const user = await userWithApp(app, clock)
    const fresh = await post(app, '/registration/', { username: 'fresh', email: 'fresh@example.com', password: 'correct horse battery staple' })
    t.equal(fresh.status, 201)
    const oneStep = await post(app, '/login/', { username: 'fresh', password: 'correct horse battery staple' })
    const twoStep = await post(app, '/login/', { username: user.username, password: user.password })
    t.ok(shapes[1](oneStep.body), `a user without MFA gets AuthKitLoginDone (${ajv.errorsText(shapes[1].errors)})`)
    t.ok(shapes[0](twoStep.body), `a user with MFA gets AuthKitLoginMfaStarted (${ajv.errorsText(shapes[0].errors)})`)
  })
})

t.test('the route schemas of SPEC 0.2 not yet registered here are complete', async (t) => {
  const names = ['app', 'email', 'sms']
  const all = allRouteSchemas(names)
  const ids = Object.values(all).map((s) => s.operationId)
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique over every route schema')
  t.same(Object.keys(methodRouteSchemas(methodSchemaOptions(names))).sort(), ['backupCodes', 'confirm', 'create', 'deactivate', 'delete', 'list', 'primary', 'qr', 'send'])
  const ajv = strictAjv(names)
  for (const route of Object.values(newRoutes)) {
    const schema = route.key === 'qr' ? all['methods.qr'] : all[route.key]
    const name = `${route.verb.toUpperCase()} ${route.path} (${route.key})`
    t.ok(schema, `${name} has a schema object`)
    t.same(schema.tags, [route.tag], `${name} is tagged ${route.tag}`)
    t.ok(schema.summary.length > 10 && schema.description.length > 20, `${name} has a summary and a description`)
    t.match(schema.operationId, /^[a-z][A-Za-z]+$/, `${name} has an operationId`)
    t.same(schema.security, [{ bearerAuth: [] }], `${name} needs auth`)
    t.ok(sessionOrder.includes(`${route.verb} ${route.path.replace('/api/auth', '')}`), `${name} has its place in the session order`)
    const byStatus = new Map<number, string[]>()
    for (const [status, code] of route.errors) byStatus.set(status, [...(byStatus.get(status) ?? []), code])
    for (const [status, codes] of byStatus) {
      const response = schema.response[status]
      t.ok(response, `${name} documents ${status}`)
      t.equal(response?.description, `Error codes: ${codes.join(', ')}.`, `${name} ${status} names ${codes.join(', ')}`)
      for (const code of codes) t.same(response?.['x-examples']?.[code]?.value?.statusCode, status, `${name} ${code} example has statusCode ${status}`)
    }
    for (const [status, response] of Object.entries(schema.response as Record<string, any>)) {
      t.ok(typeof response.description === 'string' && response.description !== '', `${name} ${status} is described`)
      if (Number(status) >= 400) t.ok(byStatus.has(Number(status)), `${name} ${status} is one SPEC gives`)
    }
    if (route.verb === 'post' && schema.body !== undefined) {
      const validate = ajv.compile(schema.body)
      t.ok(validate(structuredClone(schema.body.examples[0])), `${name} body example passes (${ajv.errorsText(validate.errors)})`)
    }
  }
  const stepUp = all.stepUp
  t.same(Object.keys(stepUp.body.properties), ['code', 'method'])
  t.same(stepUp.body.required, ['code'], 'step-up: method is optional')
  t.same(Object.keys(stepUp.response[200].properties), ['access', 'access_expiration'])
  for (const key of ['revokeSession', 'revokeDevice']) t.same(all[key].body.required, ['id'], `${key} takes {id}`)
  t.same(Object.keys(all.sessions.response[200].examples[0][0]).sort(), ['amr', 'created_at', 'current', 'expires_at', 'id', 'last_used_at'])
  t.same(Object.keys(all.devices.response[200].examples[0][0]).sort(), ['created_at', 'current', 'expires_at', 'id', 'label', 'last_used_at'])

  const qr = all['methods.qr']
  t.same(qr.querystring.properties.method.enum, names, 'GET /mfa/qr/ takes ?method= from the configured methods')
  t.ok(ajv.compile(qr.querystring)({ method: 'app' }), '?method=app passes')
  t.notOk(ajv.compile(qr.querystring)({ method: 'nope' }), 'an unknown method is a 400')
  t.ok(qr.response[200].content['image/svg+xml'], 'the QR code is answered as image/svg+xml, which Swagger UI shows as a picture')

  const del = all['methods.delete']
  t.notOk(del.body.required.includes('code'), 'POST /mfa/delete/: code is optional in the schema (SPEC section 3)')
  const login = all.login.body
  t.same(Object.keys(login.properties), ['username', 'password', 'device_token'])
  t.same(login.required, ['username', 'password'])
  const verify = all.verify
  t.equal(verify.body.properties.remember_device.type, 'boolean')
  t.notOk(verify.body.required.includes('remember_device'))
  t.ok(verify.response[200].properties.device_token && !verify.response[200].required.includes('device_token'), 'verify may answer a device_token')
  t.ok(verify.response[200].properties.device_expiration && !verify.response[200].required.includes('device_expiration'))
})

/** Every string property of a request schema, with its path. */
function stringFields (schema: any, path: string): Array<[string, any]> {
  if (schema?.type === 'string') return [[path, schema]]
  if (schema?.type === 'object') return Object.entries(schema.properties ?? {}).flatMap(([key, sub]) => stringFields(sub, `${path}.${key}`))
  return []
}

t.test('strict input: every request string refuses what no supported database stores, and is bounded', async (t) => {
  const ajv = strictAjv(['app', 'email', 'sms'])
  for (const [key, schema] of Object.entries(allRouteSchemas(['app', 'email', 'sms']))) {
    for (const part of ['body', 'querystring'] as const) {
      if (schema[part] === undefined) continue
      t.equal(schema[part].additionalProperties, false, `${key}.${part} takes no unknown field`)
      const validate = ajv.compile(schema[part])
      const example = schema[part].examples?.[0] ?? { method: 'app' }
      for (const [field, sub] of stringFields(schema[part], part)) {
        const name = `${key} ${field}`
        if (Array.isArray(sub.enum)) continue // the method names: an enum refuses everything else
        t.ok(Number.isInteger(sub.maxLength) && sub.maxLength <= 1024, `${name} has maxLength ${sub.maxLength}`)
        const prop = field.split('.').pop()!
        const valid = String(example[prop] ?? 'alice@example.com')
        for (const [label, bad] of [['U+0000', `${valid}\u0000`], ['a lone surrogate', `${valid}\ud800`], ['a reversed surrogate pair', `\udfff\ud800${valid}`]]) {
          t.notOk(validate({ ...example, [prop]: bad }), `${name} refuses ${label}`)
        }
        if (prop !== 'email') t.ok(validate({ ...example, [prop]: prop === 'username' ? 'ålice😀' : `${valid}😀` }), `${name} takes an emoji`)
        t.notOk(validate({ ...example, [prop]: 'x'.repeat(sub.maxLength + 1) }), `${name} refuses maxLength + 1 characters`)
        t.notOk(validate({ ...example, [prop]: 123456 }), `${name} refuses a number (no coercion)`)
      }
    }
  }
})

t.test('the document walks a person through a first session', async (t) => {
  const { doc } = await documentOf(withEmail)
  const text: string = doc.info.description
  const steps = ['/api/auth/registration/', '/api/auth/login/', 'Authorize', '/api/auth/mfa/', '/api/auth/mfa/qr/', '/api/auth/mfa/confirm/', '/api/auth/login/verify/']
  let at = -1
  for (const step of steps) {
    const found = text.indexOf(step, at + 1)
    t.ok(found > at, `then ${step}`)
    at = Math.max(at, found)
  }
  t.match(text, /\/dev\/outbox/, "names the demo's outbox")
  t.match(text, /backup_codes/, 'says to keep the backup codes')
  t.match(doc.components.securitySchemes.bearerAuth.description, /`access` token/, 'the Authorize dialog says which token to paste')
  t.match(doc.components.securitySchemes.bearerAuth.description, /not the `ephemeral_token`/i)
  const noRegistration = await documentOf({ registration: false })
  t.notMatch(noRegistration.doc.info.description, /registration\//, 'without registration, the walkthrough does not send people to it')
})

t.test('Swagger UI keeps the authorization over a reload and loads under a CSP it does not break', async (t) => {
  const app = await buildApp({ docs: {} })
  t.teardown(() => app.close())
  const initializer = await app.inject({ method: 'GET', url: '/api/docs/static/swagger-initializer.js' })
  t.match(initializer.body, /"persistAuthorization":\s*true/)
  const page = await app.inject({ method: 'GET', url: '/api/docs/static/index.html' })
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /style-src 'self' 'unsafe-inline'/, "Swagger UI's inline styles are allowed")
  t.match(csp, /script-src 'self';/, 'scripts only from the server')
  t.match(csp, /img-src [^;]*data:/, 'data: images (the QR code of setup_data, and the picture of GET /mfa/qr/)')
  const html = (await app.inject({ method: 'GET', url: '/api/docs' })).body
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script: every script is a file of the server')
  t.match(html, /src="[^"]*\/static\/theme\/auth-kit-svg-answers\.js"/, 'the page loads the script that shows an SVG answer as a picture')
  const script = await app.inject({ method: 'GET', url: '/api/docs/static/theme/auth-kit-svg-answers.js' })
  t.equal(script.statusCode, 200)
  t.match(script.headers['content-type'], /javascript/)
  t.match(String(script.headers['content-security-policy']), /script-src 'self';/, 'served under the same policy')
})

t.test("a host's own route behind authenticate is marked protected in the host's document", async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(swagger, { openapi: { openapi: '3.0.3', info: { title: 'host', version: '1.0.0' } } })
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:' })
  app.get('/orders', { preHandler: app.authKit.authenticate }, async () => [])
  app.get('/public-with-own-security', { onRequest: [app.authKit.authenticate], schema: { security: [] } }, async () => [])
  app.get('/health', async () => ({ ok: true }))
  app.post('/transfer', { preHandler: app.authKit.requireMfa({ maxAge: 300 }) }, async () => ({ ok: true }))
  await app.ready()
  const doc = app.swagger() as any
  t.same(doc.paths['/orders'].get.security, [{ bearerAuth: [] }], 'behind authenticate: the padlock')
  t.same(doc.paths['/transfer'].post.security, [{ bearerAuth: [] }], 'behind requireMfa: the padlock too')
  t.same(doc.paths['/public-with-own-security'].get.security, [], "the host's own security stands")
  t.notOk(doc.paths['/health'].get.security, 'a public route stays public')
  await t.resolves(SwaggerParser.validate(structuredClone(doc)))
})

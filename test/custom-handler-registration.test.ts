import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import authKitMfa, { AppHandler, MfaHandler, type AuthKitOptions, type MfaHandlerClass } from '../src/index.js'
import { SECRET, buildApp, get, newUser, post, expectError } from './helpers/app.js'
import { HardwareTokenHandler, recordingSmsHandler, smsApp } from './helpers/custom-handlers.js'

/** Registration with these handlers; resolves to the app or rejects with the options error. */
async function withHandlers (handlers: unknown[]): Promise<FastifyInstance> {
  return buildApp({ mfa: { handlers: handlers as MfaHandlerClass[] } })
}

t.test('registration refuses a handler list it cannot use, naming the class', async (t) => {
  class NoNameHandler extends MfaHandler {}
  await t.rejects(withHandlers([AppHandler, NoNameHandler]), { name: 'AuthKitOptionsError', message: /mfa\.handlers.*NoNameHandler.*NAME/ }, 'a missing NAME')

  for (const name of ['SmsCode', 'sms-code', '1sms', '_sms', 'sms code', 'smś']) {
    class BadNameHandler extends MfaHandler { static override NAME = name }
    await t.rejects(withHandlers([BadNameHandler]), { name: 'AuthKitOptionsError', message: /mfa\.handlers.*BadNameHandler/ }, `NAME ${JSON.stringify(name)} is not snake_case`)
  }

  class FirstTextHandler extends MfaHandler { static override NAME = 'sms' }
  class SecondTextHandler extends MfaHandler { static override NAME = 'sms' }
  await t.rejects(withHandlers([AppHandler, FirstTextHandler, SecondTextHandler]), { message: /mfa\.handlers.*"sms".*FirstTextHandler.*SecondTextHandler/ }, 'two handlers with one NAME')
  await t.rejects(withHandlers([AppHandler, AppHandler]), { message: /two handlers named "app"/ }, 'one class listed twice')

  class NotAHandler { static NAME = 'not_a_handler' }
  await t.rejects(withHandlers([AppHandler, NotAHandler]), { message: /mfa\.handlers.*NotAHandler.*not a class extending MfaHandler/ }, 'a class that does not extend MfaHandler')
  await t.rejects(withHandlers([AppHandler, { NAME: 'plain_object' }]), { message: /mfa\.handlers.*entry 1.*not a class extending MfaHandler/ }, 'an object')
  await t.rejects(withHandlers([AppHandler, 'sms']), { message: /mfa\.handlers.*not a class extending MfaHandler/ }, 'a name instead of a class')
  await t.rejects(withHandlers([MfaHandler]), { message: /mfa\.handlers.*MfaHandler.*not a class extending MfaHandler/ }, 'the base class itself')
  await t.rejects(withHandlers([]), { message: /mfa\.handlers/ }, 'an empty list')

  class NegativeExpiryHandler extends MfaHandler { static override NAME = 'negative'; static override CODE_EXPIRY = -5 }
  await t.rejects(withHandlers([NegativeExpiryHandler]), { message: /NegativeExpiryHandler\.CODE_EXPIRY/ }, 'a negative CODE_EXPIRY')
  class ZeroIntervalHandler extends MfaHandler { static override NAME = 'zero'; static override REQUIRES_DISPATCH = false; static override TOTP_INTERVAL = 0 }
  await t.rejects(withHandlers([ZeroIntervalHandler]), { message: /ZeroIntervalHandler\.TOTP_INTERVAL/ }, 'a zero TOTP_INTERVAL')
  class HalfWindowHandler extends MfaHandler { static override NAME = 'half'; static override REQUIRES_DISPATCH = false; static override TOTP_VALID_WINDOW = 0.5 }
  await t.rejects(withHandlers([HalfWindowHandler]), { message: /HalfWindowHandler\.TOTP_VALID_WINDOW/ }, 'a fractional TOTP_VALID_WINDOW')
  class StringDispatchHandler extends MfaHandler { static override NAME = 'maybe'; static override REQUIRES_DISPATCH = 'yes' as unknown as boolean }
  await t.rejects(withHandlers([StringDispatchHandler]), { message: /StringDispatchHandler.*REQUIRES_DISPATCH/ }, 'a REQUIRES_DISPATCH that is not a boolean')
  class NoSchemaHandler extends MfaHandler { static override NAME = 'no_schema'; static override setupDataSchema = null as never }
  await t.rejects(withHandlers([NoSchemaHandler]), { message: /NoSchemaHandler.*setupDataSchema/ }, 'a setupDataSchema that is not a schema')
})

t.test('app.authKit.handlers is this instance\'s map, in mfa.handlers order', async (t) => {
  const sms = recordingSmsHandler()
  const app = await withHandlers([sms.Handler, AppHandler, HardwareTokenHandler])
  t.teardown(() => app.close())
  t.same(app.authKit.handlers.list(), ['sms', 'app', 'hardware_token'])
  t.equal(app.authKit.handlers.get('sms'), sms.Handler)
  t.equal(app.authKit.handlers.get('hardware_token'), HardwareTokenHandler)
  t.equal(app.authKit.handlers.get('email'), undefined, 'a method not listed is not there')
})

t.test('GET /mfa/ shows display_name and requires_dispatch from each class', async (t) => {
  const sms = recordingSmsHandler()
  const app = await withHandlers([AppHandler, sms.Handler, HardwareTokenHandler])
  t.teardown(() => app.close())
  const user = await newUser(app)
  const listed = await get(app, '/mfa/', user.access)
  t.equal(listed.status, 200)
  t.same(listed.body.map((m: Record<string, unknown>) => [m.name, m.display_name, m.requires_dispatch, m.is_setup]), [
    ['app', 'Authenticator App', false, false],
    ['sms', 'SMS Authentication', true, false],
    ['hardware_token', 'HARDWARE TOKEN', false, false],
  ])
})

t.test('an unknown method name is a 400 FST_ERR_VALIDATION on every route that takes one', async (t) => {
  const { app, clock, sms } = await smsApp(t)
  const user = await newUser(app)
  for (const [url, body] of [
    ['/mfa/', { method: 'voice' }],
    ['/mfa/', { method: 'email' }],
    ['/mfa/confirm/', { method: 'voice', code: '123456' }],
    ['/mfa/primary/', { method: 'voice', primary_code: '123456' }],
    ['/mfa/deactivate/', { method: 'voice', code: '123456' }],
    ['/mfa/delete/', { method: 'voice', code: '123456' }],
    ['/mfa/send/', { method: 'voice' }],
    ['/mfa/backup-codes/', { method: 'voice', code: '123456' }],
  ] as const) {
    const res = await post(app, url, body, user.access)
    expectError(t, res, 400, 'FST_ERR_VALIDATION', `${url} ${body.method}`)
  }
  t.equal((await post(app, '/mfa/', { method: 'sms' }, user.access)).status, 201)
  t.equal((await post(app, '/mfa/confirm/', { method: 'sms', code: sms.lastCode() }, user.access)).status, 200)
  clock.advance(30)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const change = await post(app, '/login/change-method/', { ephemeral_token: step1.body.ephemeral_token, new_method: 'voice' })
  expectError(t, change, 400, 'FST_ERR_VALIDATION', 'change-method new_method')
})

t.test('the OpenAPI document shows the configured handlers', async (t) => {
  const sms = recordingSmsHandler()
  const app = await buildApp({ docs: { routePrefix: '/api/docs' }, mfa: { handlers: [AppHandler, sms.Handler, HardwareTokenHandler] } })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/api/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.same(doc.components.schemas.AuthKitMethodName.enum, ['app', 'sms', 'hardware_token'], 'the method enum is the handler names')

  const created = doc.paths['/api/auth/mfa/'].post.responses['201'].content['application/json'].schema
  const variants = created.properties.setup_data.oneOf as Array<Record<string, any>>
  t.equal(variants.length, 3, 'setup_data is oneOf over the handlers\' setupDataSchemas')
  const hardware = variants.find((v) => v.title === 'HardwareTokenSetupData')
  t.ok(hardware, 'the custom setupDataSchema is there, under its own title')
  t.same(Object.keys(hardware?.properties ?? {}).sort(), ['detail', 'provisioning_link'])
  t.same([...(hardware?.required ?? [])].sort(), ['detail', 'provisioning_link'])
  t.equal(hardware?.properties.provisioning_link.description, 'otpauth:// link for the token.')
  const defaultShape = variants.find((v) => v.title === 'sms setup data')
  t.same(defaultShape?.properties, { detail: { type: 'string' } }, 'a handler without its own schema documents {detail}')
  t.ok(variants.find((v) => v.title === 'AppSetupData'))
})

t.test('two plugin instances with different handlers live side by side', async (t) => {
  const smsA = recordingSmsHandler()
  const options = (handlers: MfaHandlerClass[]): AuthKitOptions => ({ secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, mfa: { handlers } })

  t.test('in two Fastify apps', async (t) => {
    const first = Fastify()
    const second = Fastify()
    t.teardown(async () => { await first.close(); await second.close() })
    await first.register(authKitMfa, options([AppHandler, smsA.Handler]))
    await second.register(authKitMfa, options([HardwareTokenHandler, AppHandler]))
    await first.ready()
    await second.ready()
    t.same(first.authKit.handlers.list(), ['app', 'sms'])
    t.same(second.authKit.handlers.list(), ['hardware_token', 'app'])
    t.equal(second.authKit.handlers.get('sms'), undefined)

    const firstUser = await newUser(first)
    const secondUser = await newUser(second)
    t.equal((await post(first, '/mfa/', { method: 'sms' }, firstUser.access)).status, 201)
    t.equal((await post(second, '/mfa/', { method: 'sms' }, secondUser.access)).status, 400, 'the other instance has no sms')
    t.equal((await post(second, '/mfa/', { method: 'hardware_token' }, secondUser.access)).status, 201)
    t.equal((await post(first, '/mfa/', { method: 'hardware_token' }, firstUser.access)).status, 400)
    t.same((await get(second, '/mfa/', secondUser.access)).body.map((m: { name: string }) => m.name), ['hardware_token', 'app'])
  })

  t.test('in two encapsulated registrations of one app, each with its prefix and docs', async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    const smsB = recordingSmsHandler()
    const seen: Record<string, string[]> = {}
    await app.register(async (scope) => {
      await scope.register(authKitMfa, { ...options([AppHandler, smsB.Handler]), prefix: '/one/auth', docs: { routePrefix: '/one/docs' } })
      scope.after(() => { seen.one = scope.authKit.handlers.list() })
    })
    await app.register(async (scope) => {
      await scope.register(authKitMfa, { ...options([AppHandler, HardwareTokenHandler]), prefix: '/two/auth', docs: { routePrefix: '/two/docs' } })
      scope.after(() => { seen.two = scope.authKit.handlers.list() })
    })
    await app.ready()
    t.same(seen, { one: ['app', 'sms'], two: ['app', 'hardware_token'] })

    const docOne = (await app.inject({ method: 'GET', url: '/one/docs/json' })).json()
    const docTwo = (await app.inject({ method: 'GET', url: '/two/docs/json' })).json()
    t.same(docOne.components.schemas.AuthKitMethodName.enum, ['app', 'sms'])
    t.same(docTwo.components.schemas.AuthKitMethodName.enum, ['app', 'hardware_token'])
    t.ok(docOne.paths['/one/auth/mfa/'])
    t.notOk(docOne.paths['/two/auth/mfa/'], 'each document shows its own routes')

    const register = async (prefix: string) => {
      const username = `side_${prefix.slice(1, 4)}`
      const body = { username, email: `${username}@example.com`, password: 'correct horse battery' }
      t.equal((await app.inject({ method: 'POST', url: `${prefix}/registration/`, payload: body })).statusCode, 201)
      const login = await app.inject({ method: 'POST', url: `${prefix}/login/`, payload: { username, password: body.password } })
      return login.json().access as string
    }
    const create = async (prefix: string, access: string, method: string) =>
      (await app.inject({ method: 'POST', url: `${prefix}/mfa/`, payload: { method }, headers: { authorization: `Bearer ${access}` } })).statusCode
    const one = await register('/one/auth')
    const two = await register('/two/auth')
    t.equal(await create('/one/auth', one, 'sms'), 201)
    t.equal(smsB.texts.length, 1)
    t.equal(await create('/two/auth', two, 'sms'), 400)
    t.equal(await create('/two/auth', two, 'hardware_token'), 201)
    t.equal(await create('/one/auth', one, 'hardware_token'), 400)
  })
})

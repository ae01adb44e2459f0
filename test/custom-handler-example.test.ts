import t from 'tap'
import Fastify from 'fastify'
import authKitMfa, { AppHandler, EmailHandler, type AuthKitOptions, type AuthKitUser, type UserStore } from '../src/index.js'
import { DEMO_PHONE_NUMBER, SmsHandler, createSmsOutbox, maskNumber, type SmsGateway, type SmsOutbox } from '../examples/sms-handler.js'
import { SECRET, buildApp, get, manualClock, newUser, post, expectError } from './helpers/app.js'

/** The plugin and the outbox page, wired as the demo server does (the page before ready). */
async function appWithOutbox (options: Partial<AuthKitOptions>, outbox: SmsOutbox, path?: string) {
  const app = Fastify({ logger: false })
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, ...options } as AuthKitOptions)
  outbox.register(app, path)
  await app.ready()
  return app
}

const TEXT = /^(\d{6}) is your verification code\. It expires in 5 minutes\./

function codeOf (text: string | undefined): string {
  const match = TEXT.exec(text ?? '')
  if (match === null) throw new Error(`not a code text: ${String(text)}`)
  return match[1]
}

t.test('examples/sms-handler.ts: the SMS method with the demo outbox', async (t) => {
  const clock = manualClock()
  const outbox = createSmsOutbox({ now: clock.now })
  const app = await appWithOutbox({
    now: clock.now,
    email: { transport: { jsonTransport: true }, from: 'no-reply@example.com' },
    mfa: { handlers: [AppHandler, EmailHandler, SmsHandler.withGateway(outbox.gateway, { fallbackNumber: DEMO_PHONE_NUMBER })] },
  }, outbox)
  t.teardown(() => app.close())
  const user = await newUser(app)

  const created = await post(app, '/mfa/', { method: 'sms' }, user.access)
  t.equal(created.status, 201)
  t.same(created.body.setup_data, { detail: SmsHandler.SETUP_RESPONSE_MESSAGE, phone_hint: '•••••••••23' }, 'setup_data has the SMS shape')
  t.equal(outbox.messages().length, 1)
  t.equal(outbox.messages()[0].to, DEMO_PHONE_NUMBER, 'the built-in store has no phone: the demo number is used')
  t.match(outbox.messages()[0].text, TEXT, 'the text says CODE_EXPIRY (300 s) in minutes')

  const listed = await get(app, '/mfa/', user.access)
  t.same(listed.body.map((m: Record<string, unknown>) => [m.name, m.display_name, m.requires_dispatch]), [
    ['app', 'Authenticator App', false], ['email', 'Email', true], ['sms', 'SMS Authentication', true],
  ])

  t.equal((await post(app, '/mfa/confirm/', { method: 'sms', code: codeOf(outbox.messages()[0].text) }, user.access)).status, 200)

  clock.advance(30)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(step1.body.method, 'sms')
  t.equal(outbox.messages().length, 2, 'login texted a code')
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: codeOf(outbox.messages()[0].text) })
  t.equal(step2.status, 200, 'the newest text logs in')

  const page = await app.inject({ method: 'GET', url: '/dev/sms' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.headers['cache-control'], 'no-store')
  t.match(page.body, 'Development aid', 'the page says what it is')
  t.match(page.body, outbox.messages()[0].text)
  t.ok(page.body.indexOf(outbox.messages()[0].text) < page.body.indexOf(outbox.messages()[1].text), 'newest first')

  const json = await app.inject({ method: 'GET', url: '/dev/sms/json' })
  t.same(json.json(), outbox.messages())
  t.equal(json.json()[0].sentAt, new Date(clock.now()).toISOString())
})

t.test('a host store with phone numbers: codes go to the user\'s own phone', async (t) => {
  interface PhoneBookUser extends AuthKitUser { id: string, username: string, password: string, phone: string | null }
  const people: PhoneBookUser[] = [
    { id: '1', username: 'ada', password: 'correct horse battery', phone: '+44 20 7946 0958' },
    { id: '2', username: 'bob', password: 'correct horse battery', phone: null },
  ]
  // A host's own user model; plain-text passwords only because this is a test.
  const users: UserStore<PhoneBookUser> = {
    async findByLogin (login) { return people.find((p) => p.username === login) },
    async findById (id) { return people.find((p) => p.id === id) },
    async verifyPassword (user, password) { return user.password === password },
    toPublic (user) { return { id: user.id, username: user.username } },
    emailOf () { return null },
  }
  const outbox = createSmsOutbox()
  // No fallbackNumber: a user without a phone cannot set SMS up.
  const app = await buildApp({ users, registration: false, mfa: { handlers: [AppHandler, SmsHandler.withGateway(outbox.gateway)] } })
  t.teardown(() => app.close())
  const login = async (username: string) => (await post(app, '/login/', { username, password: 'correct horse battery' })).body.access as string

  const ada = await post(app, '/mfa/', { method: 'sms' }, await login('ada'))
  t.equal(ada.status, 201)
  t.equal(ada.body.setup_data.phone_hint, maskNumber('+44 20 7946 0958'))
  t.match(ada.body.setup_data.phone_hint, /58$/)
  t.equal(outbox.messages()[0].to, '+44 20 7946 0958')

  const bobAccess = await login('bob')
  const bob = await post(app, '/mfa/', { method: 'sms' }, bobAccess)
  expectError(t, bob, 422, 'SMS_NO_PHONE_NUMBER')
  t.equal(outbox.messages().length, 1, 'nothing was texted')
  const listed = await get(app, '/mfa/', bobAccess)
  t.equal(listed.body.find((m: { name: string }) => m.name === 'sms').is_setup, false, 'the method was not created')
})

t.test('a gateway that fails is a 503 AUTH_KIT_DELIVERY_FAILED and creates nothing', async (t) => {
  const down: SmsGateway = { async send () { throw new Error('carrier unreachable') } }
  const app = await buildApp({ mfa: { handlers: [AppHandler, SmsHandler.withGateway(down, { fallbackNumber: DEMO_PHONE_NUMBER })] } })
  t.teardown(() => app.close())
  const user = await newUser(app)
  const res = await post(app, '/mfa/', { method: 'sms' }, user.access)
  expectError(t, res, 503, 'AUTH_KIT_DELIVERY_FAILED')
  t.notMatch(JSON.stringify(res.body), 'carrier unreachable', 'the gateway\'s error stays in the log')
  t.equal((await get(app, '/mfa/', user.access)).body.find((m: { name: string }) => m.name === 'sms').is_setup, false)
})

t.test('withGateway() binds a subclass; the plain SmsHandler has no gateway and cannot send', async (t) => {
  const first = createSmsOutbox()
  const second = createSmsOutbox()
  const One = SmsHandler.withGateway(first.gateway)
  const Two = SmsHandler.withGateway(second.gateway)
  t.equal(One.gateway, first.gateway)
  t.equal(Two.gateway, second.gateway)
  t.equal(SmsHandler.gateway, null)
  t.equal(One.NAME, 'sms')
  t.equal(One.name, 'SmsHandler', 'error messages name it SmsHandler')

  const app = await buildApp({ mfa: { handlers: [AppHandler, SmsHandler] } })
  t.teardown(() => app.close())
  const user = await newUser(app)
  const res = await post(app, '/mfa/', { method: 'sms' }, user.access)
  t.equal(res.status, 503)
})

t.test('the outbox page escapes what it shows and keeps only the latest texts', async (t) => {
  const outbox = createSmsOutbox({ keep: 3 })
  for (let i = 0; i < 5; i++) await outbox.gateway.send('+15555550100', `text ${i} <script>alert(1)</script>`)
  t.same(outbox.messages().map((m) => m.text.slice(0, 6)), ['text 4', 'text 3', 'text 2'])
  const app = await appWithOutbox({}, outbox, '/dev/texts')
  t.teardown(() => app.close())
  const page = await app.inject({ method: 'GET', url: '/dev/texts' })
  t.equal(page.statusCode, 200)
  t.notMatch(page.body, '<script>')
  t.match(page.body, '&#60;script&#62;')
})

t.test('the outbox page refuses to run in production', async (t) => {
  const saved = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  t.teardown(() => { if (saved === undefined) delete process.env.NODE_ENV; else process.env.NODE_ENV = saved })
  const host = Fastify({ logger: false })
  t.teardown(() => host.close())
  t.throws(() => createSmsOutbox().register(host), /production/)
})

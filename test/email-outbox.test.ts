import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import authKitMfa, { AppHandler, EmailHandler, type AuthKitOptions } from '../src/index.js'
import { createDevOutbox } from '../examples/dev-outbox.js'
import { SECRET, manualClock, newUser, post } from './helpers/app.js'

async function outboxApp (t: { teardown: (fn: () => unknown) => void }, options: Partial<AuthKitOptions> = {}) {
  const outbox = createDevOutbox()
  const clock = manualClock()
  const app = Fastify({ logger: false })
  outbox.register(app)
  await app.register(authKitMfa, {
    secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, now: clock.now,
    email: { transport: outbox.transport, from: 'no-reply@example.com' },
    mfa: { handlers: [AppHandler, EmailHandler], applicationName: 'Demo' },
    ...options,
  })
  await app.ready()
  t.teardown(() => app.close())
  return { app, outbox, clock }
}

async function outboxPage (app: FastifyInstance, url = '/dev/outbox') {
  return app.inject({ method: 'GET', url })
}

t.test('the development outbox page shows a code sent through the plugin, and that code works', async (t) => {
  const { app } = await outboxApp(t)
  const empty = await outboxPage(app)
  t.equal(empty.statusCode, 200)
  t.match(empty.body, 'No mail yet.')

  const user = await newUser(app)
  t.equal((await post(app, '/mfa/', { method: 'email' }, user.access)).status, 201)
  const page = await outboxPage(app)
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], 'text/html')
  t.equal(page.headers['cache-control'], 'no-store')
  t.match(page.body, 'Never run this in production')
  t.match(page.body, 'Your Demo verification code')
  t.match(page.body, `${user.username}@example.com`)
  const code = /\b([0-9]{6})\b/.exec(page.body)?.[1]
  t.ok(code, 'the code is on the page')
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code }, user.access)).status, 200)
})

t.test('the outbox lists the newest mail first', async (t) => {
  const { app, clock } = await outboxApp(t)
  const first = await newUser(app)
  await post(app, '/mfa/', { method: 'email' }, first.access)
  clock.advance(30)
  const second = await newUser(app)
  await post(app, '/mfa/', { method: 'email' }, second.access)
  const body = (await outboxPage(app)).body
  t.ok(body.indexOf(second.username) < body.indexOf(first.username))
})

t.test('the outbox page shows mail content as text, never as markup', async (t) => {
  const outbox = createDevOutbox()
  await outbox.transport.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: '<script>alert(1)</script>', text: '<b>123456</b>' })
  const host = Fastify({ logger: false })
  outbox.register(host, '/outbox')
  t.teardown(() => host.close())
  const page = await outboxPage(host, '/outbox')
  t.notMatch(page.body, '<script>alert(1)</script>')
  t.match(page.body, '&#60;script&#62;')
  t.match(page.body, '&#60;b&#62;123456')
})

t.test('the outbox refuses to run in production', async (t) => {
  const saved = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  t.teardown(() => { if (saved === undefined) delete process.env.NODE_ENV; else process.env.NODE_ENV = saved })
  const host = Fastify({ logger: false })
  t.teardown(() => host.close())
  t.throws(() => createDevOutbox().register(host), /production/)
})

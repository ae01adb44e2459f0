import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import authKitMfa, { type AuthKitOptions } from '../../src/index.js'
import { SECRET, get, manualClock, newUser, post, secretOf, totp, expectError, confirmTotp } from '../helpers/app.js'
import { jwtPayload } from '../helpers/flows.js'

// SPEC section 9 "Required enrolment" and "Step-up", section 7 "The host's own routes" (issue 13).

async function hostApp (t: { teardown: (fn: () => unknown) => void }, options: Partial<AuthKitOptions> = {}) {
  const clock = manualClock()
  const events: Array<{ type: string, userId: string | null }> = []
  const app = Fastify()
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, now: clock.now, onEvent: (e) => { events.push(e) }, ...options } as AuthKitOptions)
  app.get('/me', { preHandler: app.authKit.authenticate }, async (request) => ({ id: request.user.id }))
  app.post('/transfer', { preHandler: app.authKit.requireMfa({ maxAge: 300 }) }, async () => ({ done: true }))
  app.post('/any-age', { preHandler: app.authKit.requireMfa({ maxAge: null }) }, async () => ({ done: true }))
  // A fake OAuth callback: the host has authenticated the user its own way.
  app.get<{ Querystring: { login: string } }>('/oauth/callback', async (request) => {
    const user = await app.authKit.users.findByLogin(request.query.login)
    return app.authKit.startLogin(request, user!)
  })
  await app.ready()
  t.teardown(() => app.close())
  return { app, clock, events }
}

async function enrol (app: FastifyInstance, access: string, clock: { now: () => number, advance: (s: number) => void }) {
  const created = await post(app, '/mfa/', { method: 'app' }, access)
  const secret = secretOf(created.body.setup_data.qr_link)
  const confirmed = await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, access)
  clock.advance(30)
  return { secret, confirmed }
}

const inject = async (app: FastifyInstance, method: 'GET' | 'POST', url: string, access: string) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${access}` } })

t.test('mfa.required: a user without a method gets a setup-only token that works on the setup routes and nowhere else', async (t) => {
  const { app, clock } = await hostApp(t, { mfa: { required: true } })
  const reg = await post(app, '/registration/', { username: 'alice', email: 'alice@example.com', password: 'correct horse battery' })
  t.equal(reg.status, 201)
  const login = await post(app, '/login/', { username: 'alice', password: 'correct horse battery' })
  t.equal(login.status, 200)
  t.same(Object.keys(login.body).sort(), ['access', 'access_expiration', 'mfa_enabled', 'mfa_setup_required', 'user'])
  t.equal(login.body.mfa_enabled, false)
  t.equal(login.body.mfa_setup_required, true)
  const setup = login.body.access
  t.same(jwtPayload(setup).amr, ['pwd'])

  t.equal((await get(app, '/user/', setup)).status, 200)
  t.equal((await get(app, '/mfa/', setup)).status, 200)
  for (const [method, url] of [['GET', '/me'], ['GET', '/api/auth/sessions/'], ['GET', '/api/auth/devices/'], ['POST', '/transfer']] as const) {
    const res = await inject(app, method, url, setup)
    t.equal(res.statusCode, 403, `${method} ${url}`)
    t.equal(res.json().code, 'AUTH_KIT_MFA_SETUP_REQUIRED')
  }
  const stepUp = await post(app, '/login/step-up/', { code: '123456' }, setup)
  expectError(t, stepUp, 403, 'AUTH_KIT_MFA_SETUP_REQUIRED')

  const { confirmed } = await enrol(app, setup, clock)
  t.equal(confirmed.status, 200)
  t.ok(typeof confirmed.body.access === 'string' && typeof confirmed.body.refresh === 'string', 'confirm answers a full session')
  t.same(jwtPayload(confirmed.body.access).amr, ['pwd', 'mfa'])
  t.equal((await inject(app, 'GET', '/me', confirmed.body.access)).statusCode, 200)
  t.equal((await get(app, '/user/', setup)).status, 401, 'the setup-only session is over')
  const next = await post(app, '/login/', { username: 'alice', password: 'correct horse battery' })
  t.equal(next.body.mfa_enabled, true, 'the next login asks for the second step')
})

t.test('mfa.required as a function, read at each login: turning it on catches existing users', async (t) => {
  let admins = new Set<string>()
  const { app } = await hostApp(t, { mfa: { required: (user) => admins.has(String(user.username)) } })
  const user = await newUser(app)
  admins = new Set([user.username])
  const login = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(login.body.mfa_setup_required, true)
  const other = await newUser(app)
  t.equal((await post(app, '/login/', { username: other.username, password: other.password })).body.refresh !== undefined, true, 'others are not asked')
})

t.test('requireMfa: amr without mfa, or an auth_time older than maxAge, is a 401 with the RFC 9470 challenge; step-up answers it', async (t) => {
  const { app, clock, events } = await hostApp(t)
  const user = await newUser(app)
  const noMfa = await inject(app, 'POST', '/transfer', user.access)
  t.equal(noMfa.statusCode, 401)
  t.equal(noMfa.json().code, 'AUTH_KIT_STEP_UP_REQUIRED')
  t.equal(noMfa.headers['www-authenticate'], 'Bearer error="insufficient_user_authentication", error_description="A second factor is required", max_age="300"')

  const { secret } = await enrol(app, user.access, clock)
  const login = await post(app, '/login/', { username: user.username, password: user.password })
  const verified = await post(app, '/login/verify/', { ephemeral_token: login.body.ephemeral_token, code: await totp(secret, clock.now()) })
  t.equal((await inject(app, 'POST', '/transfer', verified.body.access)).statusCode, 200, 'fresh second factor')

  clock.advance(301)
  const refreshed = await post(app, '/token/refresh/', { refresh: verified.body.refresh })
  const stale = await inject(app, 'POST', '/transfer', refreshed.body.access)
  t.equal(stale.statusCode, 401, 'past maxAge, even on a fresh access token')
  t.match(stale.headers['www-authenticate'], /max_age="300"/)
  t.equal((await inject(app, 'POST', '/any-age', refreshed.body.access)).statusCode, 200, 'maxAge null: any age')

  events.length = 0
  const up = await post(app, '/login/step-up/', { code: await totp(secret, clock.now()) }, refreshed.body.access)
  t.equal(up.status, 200)
  t.equal((await inject(app, 'POST', '/transfer', up.body.access)).statusCode, 200, 'retried after step-up')
  t.match(events, [{ type: 'step_up_succeeded', userId: user.id }])
})

t.test('startLogin: a host\'s own way in gets exactly what POST /login/ answers, with the same events', async (t) => {
  const { app, clock, events } = await hostApp(t, { mfa: { required: (user) => String(user.username).startsWith('must') } })
  const plain = await newUser(app)
  const one = await app.inject({ method: 'GET', url: `/oauth/callback?login=${plain.username}` })
  t.equal(one.json().mfa_enabled, false)
  t.ok(one.json().refresh, 'tokens at once for a user without a method')

  const { secret } = await enrol(app, plain.access, clock)
  events.length = 0
  const challenged = (await app.inject({ method: 'GET', url: `/oauth/callback?login=${plain.username}` })).json()
  t.equal(challenged.mfa_enabled, true, 'the second step is not skipped')
  t.same(challenged.methods, ['app'])
  t.match(events, [{ type: 'mfa_challenge_started', userId: plain.id, method: 'app' }])
  const verified = await post(app, '/login/verify/', { ephemeral_token: challenged.ephemeral_token, code: await totp(secret, clock.now()) })
  t.equal(verified.status, 200)

  const must = await post(app, '/registration/', { username: 'must_enrol', email: 'must@example.com', password: 'correct horse battery' })
  t.equal(must.status, 201)
  const setup = (await app.inject({ method: 'GET', url: '/oauth/callback?login=must_enrol' })).json()
  t.equal(setup.mfa_setup_required, true, 'required enrolment applies too')
})

t.test('examples/oauth-callback.ts: the fake OAuth callback gets the second step for an MFA user', async (t) => {
  const { buildOAuthExample } = await import('../../examples/oauth-callback.js')
  const app = await buildOAuthExample()
  t.teardown(() => app.close())
  const user = await newUser(app)
  const first = (await app.inject({ method: 'GET', url: `/oauth/callback?email=${user.username}@example.com` })).json()
  t.equal(first.mfa_enabled, false, 'no method yet: tokens')
  await confirmTotp(app, user.access, { now: Date.now })
  const second = (await app.inject({ method: 'GET', url: `/oauth/callback?email=${user.username}@example.com` })).json()
  t.equal(second.mfa_enabled, true, 'an MFA user gets the challenge')
  t.type(second.ephemeral_token, 'string')
})

import t from 'tap'
import Fastify from 'fastify'
import authKitMfa from '../../src/index.js'
import { SECRET, buildApp, get, manualClock, newUser, post, totp, P, expectError, confirmTotp, appOverStore, clockedApp } from '../helpers/app.js'
import { jwtPayload } from '../helpers/flows.js'

// Rule 12, `tokens.refreshReuseGrace`, SPEC section 9 "Sessions", and the
// admin API's revokeSessions (issue 8, faults 2, 9 and 12).

t.test('a session outlives no account: a deleted user\'s tokens, attempts and refresh chain die at once', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await newUser(app)
  const { secret } = await confirmTotp(app, user.access, clock)
  clock.advance(30)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(step1.body.mfa_enabled, true)

  const row = await app.authKit.db.selectFrom('auth_kit_user').selectAll().where('id', '=', user.id).executeTakeFirstOrThrow()
  await app.authKit.db.deleteFrom('auth_kit_user').where('id', '=', user.id).execute()

  t.equal((await get(app, '/user/', user.access)).status, 401, 'access token')
  const refreshed = await post(app, '/token/refresh/', { refresh: user.refresh })
  expectError(t, refreshed, 401, 'AUTH_KIT_INVALID_REFRESH_TOKEN', 'refresh')
  const verified = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(secret, clock.now()) })
  expectError(t, verified, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'login attempt')

  // The store returns the user again: the chain stays dead for good.
  await app.authKit.db.insertInto('auth_kit_user').values(row).execute()
  t.equal((await post(app, '/token/refresh/', { refresh: user.refresh })).status, 401, 'revoked for good')
})

t.test('a user a custom store disables (returns null) loses every session at once', async (t) => {
  const banned = new Set<string>()
  const clock = manualClock()
  const app = await appOverStore(t, (base) => ({ findById: async (id) => (banned.has(id) ? null : base.findById(id)) }), { now: clock.now })
  const user = await newUser(app)
  banned.add(user.id)
  t.equal((await get(app, '/user/', user.access)).status, 401)
  t.equal((await post(app, '/token/refresh/', { refresh: user.refresh })).status, 401)
  banned.delete(user.id)
  t.equal((await post(app, '/token/refresh/', { refresh: user.refresh })).status, 401, 'the chain stays revoked when the store returns the user again')
  t.equal((await get(app, '/user/', user.access)).status, 401, 'and so do its access tokens')
})

t.test('two tabs refreshing at once: one wins, the other is refused, and nobody is logged out', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await newUser(app)
  const [a, b] = await Promise.all([post(app, '/token/refresh/', { refresh: user.refresh }), post(app, '/token/refresh/', { refresh: user.refresh })])
  const statuses = [a.status, b.status].sort()
  t.same(statuses, [200, 401])
  const winner = a.status === 200 ? a : b
  clock.advance(5)
  t.equal((await post(app, '/token/refresh/', { refresh: user.refresh })).status, 401, 'inside the grace: refused')
  t.equal((await get(app, '/user/', winner.body.access)).status, 200, 'the winner\'s session lives on')
  const next = await post(app, '/token/refresh/', { refresh: winner.body.refresh })
  t.equal(next.status, 200, 'and its chain rotates')
})

t.test('a spent refresh token shown again after the grace revokes its whole session', async (t) => {
  const { app, clock } = await clockedApp(t, { tokens: { refreshReuseGrace: 10 } })
  const user = await newUser(app)
  const rotated = await post(app, '/token/refresh/', { refresh: user.refresh })
  clock.advance(11)
  t.equal((await post(app, '/token/refresh/', { refresh: user.refresh })).status, 401)
  t.equal((await post(app, '/token/refresh/', { refresh: rotated.body.refresh })).status, 401, 'the chain is revoked')
  t.equal((await get(app, '/user/', rotated.body.access)).status, 401, 'its access tokens too, at once')
})

t.test('sessions: listed newest first, one revoked, the others revoked, each at once', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await newUser(app)
  clock.advance(1)
  const second = await post(app, '/login/', { username: user.username, password: user.password })
  clock.advance(1)
  const third = await post(app, '/login/', { username: user.username, password: user.password })
  const list = await get(app, '/sessions/', third.body.access)
  t.equal(list.status, 200)
  t.equal(list.body.length, 3)
  t.same(list.body.map((s: { current: boolean }) => s.current), [true, false, false], 'newest first, the caller\'s marked')
  t.same(Object.keys(list.body[0]).sort(), ['amr', 'created_at', 'current', 'expires_at', 'id', 'last_used_at'])
  t.equal(list.body[2].id, jwtPayload(user.access).sid)

  t.equal((await post(app, '/sessions/revoke/', { id: jwtPayload(second.body.access).sid }, third.body.access)).status, 204)
  t.equal((await get(app, '/user/', second.body.access)).status, 401, 'its access token stops at once')
  t.equal((await post(app, '/token/refresh/', { refresh: second.body.refresh })).status, 401, 'and its refresh token')

  const stranger = await newUser(app)
  t.equal((await post(app, '/sessions/revoke/', { id: jwtPayload(user.access).sid }, stranger.access)).status, 204, 'another user\'s id: 204')
  t.equal((await get(app, '/user/', user.access)).status, 200, 'and nothing changes')

  t.equal((await post(app, '/sessions/revoke-others/', {}, third.body.access)).status, 204)
  t.equal((await get(app, '/user/', user.access)).status, 401)
  t.equal((await get(app, '/user/', third.body.access)).status, 200, 'the caller\'s own stays')
  t.equal((await get(app, '/sessions/', third.body.access)).body.length, 1)
})

t.test('logout ends the session: its refresh token and its access tokens', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const user = await newUser(app)
  t.equal((await post(app, '/logout/', { refresh: user.refresh }, user.access)).status, 204)
  t.equal((await get(app, '/user/', user.access)).status, 401)
  t.equal((await post(app, '/token/refresh/', { refresh: user.refresh })).status, 401)
})

t.test('a reused user id inherits no session: admin.revokeSessions ends them when the host deletes a user', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const user = await newUser(app)
  // The host deletes the user and calls revokeSessions, as the README asks;
  // whoever later gets the same id starts with no session of the first user.
  const row = await app.authKit.db.selectFrom('auth_kit_user').selectAll().where('id', '=', user.id).executeTakeFirstOrThrow()
  await app.authKit.db.deleteFrom('auth_kit_user').where('id', '=', user.id).execute()
  await app.authKit.admin.revokeSessions(user.id)
  await app.authKit.db.insertInto('auth_kit_user').values({ ...row, username: 'newcomer', username_key: 'newcomer', email: 'newcomer@example.com', email_key: 'newcomer@example.com' }).execute()
  t.equal((await get(app, '/user/', user.access)).status, 401, 'the first user\'s access token')
  t.equal((await post(app, '/token/refresh/', { refresh: user.refresh })).status, 401, 'the first user\'s refresh token')
})

t.test('admin.revokeSessions emits session_revoked with ip null', async (t) => {
  const events: Array<{ type: string, userId: string | null, ip: string | null }> = []
  const app = await buildApp({ onEvent: (e) => { events.push(e) } })
  t.teardown(() => app.close())
  const user = await newUser(app)
  events.length = 0
  await app.authKit.admin.revokeSessions(user.id)
  t.match(events, [{ type: 'session_revoked', userId: user.id, ip: null }])
})

t.test('the password hash never reaches request.user', async (t) => {
  const app = Fastify()
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false })
  app.get('/me', { preHandler: app.authKit.authenticate }, async (request) => request.user)
  await app.ready()
  t.teardown(() => app.close())
  const user = await newUser(app)
  const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${user.access}` } })
  t.equal(me.statusCode, 200)
  t.equal(me.json().id, user.id)
  t.notMatch(me.body, /scrypt|password/i, 'no hash, under any name')
  t.equal(P, '/api/auth')
})

t.test('a user the store stops returning loses every session, attempt and device for good, even if the store returns them again', async (t) => {
  const banned = new Set<string>()
  const clock = manualClock()
  const app = await appOverStore(t, (base) => ({ findById: async (id) => (banned.has(id) ? null : base.findById(id)) }), { now: clock.now })
  app.get('/me', { preHandler: app.authKit.authenticate }, async (request) => ({ id: request.user.id }))
  const user = await newUser(app)
  const { secret } = await confirmTotp(app, user.access, clock)
  clock.advance(30)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const verified = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(secret, clock.now()), remember_device: true })
  clock.advance(30)
  const pending = await post(app, '/login/', { username: user.username, password: user.password })

  banned.add(user.id)
  const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${verified.body.access}` } })
  t.equal(me.statusCode, 401, 'met once while banned')
  banned.delete(user.id)

  const again = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${verified.body.access}` } })
  t.equal(again.statusCode, 401, 'the access token stays dead when the store returns the user')
  t.equal((await post(app, '/login/verify/', { ephemeral_token: pending.body.ephemeral_token, code: await totp(secret, clock.now()) })).status, 401, 'so does a login attempt started before')
  const viaDevice = await post(app, '/login/', { username: user.username, password: user.password, device_token: verified.body.device_token })
  t.equal(viaDevice.body.mfa_enabled, true, 'and the remembered device')
})

t.test('confirming the first method ends every other password-only session', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await newUser(app)
  const attacker = await post(app, '/login/', { username: user.username, password: user.password })
  await confirmTotp(app, user.access, clock)
  t.equal((await get(app, '/user/', attacker.body.access)).status, 401, 'the other password-only session ended')
  t.equal((await post(app, '/token/refresh/', { refresh: attacker.body.refresh })).status, 401, 'and its refresh token')
  t.equal((await get(app, '/user/', user.access)).status, 200, 'the confirming session stays')
})

t.test('a password-only token cannot end the sessions or forget the devices of a user with MFA', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await newUser(app)
  await confirmTotp(app, user.access, clock)
  for (const [url, body] of [['/sessions/revoke-others/', {}], ['/sessions/revoke/', { id: 'x' }], ['/devices/revoke/', { id: 'x' }]] as const) {
    const res = await post(app, url, body, user.access)
    expectError(t, res, 401, 'AUTH_KIT_STEP_UP_REQUIRED', url)
  }
})

t.test('an ORM-shaped record or a nested hash never reaches request.user', async (t) => {
  // Shaped like an ORM model: the hash sits in its internals, toJSON gives the row.
  const model = (row: Record<string, unknown>) => ({ dataValues: row, toJSON: () => ({ ...row, credentials: { passwordHash: 'SECRET_HASH', pwd_hash: 'SECRET_HASH' } }), ...row })
  const app = await appOverStore(t, (base) => ({
    findByLogin: async (login) => { const u = await base.findByLogin(login); return u == null ? u : model(u) },
    findById: async (id) => { const u = await base.findById(id); return u == null ? u : model({ ...u, hash: 'SECRET_HASH', salt: 'SECRET_SALT' }) },
    verifyPassword: async (u, p) => base.verifyPassword(u.dataValues, p),
  }))
  app.get('/me', { preHandler: app.authKit.authenticate }, async (request) => request.user)
  const user = await newUser(app)
  const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${user.access}` } })
  t.equal(me.statusCode, 200)
  t.equal(me.json().id, user.id)
  t.notMatch(me.body, /SECRET|scrypt/, 'no hash or salt, at any depth')
})

t.test('a host route\'s 500 from authentication carries no database or store text', async (t) => {
  let failing = false
  const app = await appOverStore(t, (base) => ({
    findById: async (id) => { if (failing) throw new Error('ECONNREFUSED 10.0.0.5:5432 SECRETDETAIL'); return base.findById(id) },
  }))
  app.get('/me', { preHandler: app.authKit.authenticate }, async (request) => ({ id: request.user.id }))
  const user = await newUser(app)
  failing = true
  const me = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${user.access}` } })
  t.equal(me.statusCode, 500)
  t.notMatch(me.body, /ECONNREFUSED|SECRETDETAIL|10\.0\.0\.5/)
})

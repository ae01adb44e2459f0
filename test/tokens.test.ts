import t from 'tap'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import authKitMfa, { type AuthKitOptions } from '../src/index.js'
import { P, SECRET, expectError, get, manualClock, newUser, post, totp, userWithApp, clockedApp } from './helpers/app.js'
import { isIso8601, jwtPayload, startLogin } from './helpers/flows.js'

t.test('refresh tokens', async (t) => {
  const { app, clock } = await clockedApp(t, { tokens: { refreshTokenExpiry: 600 } })

  t.test('a refresh gives a new pair and the old refresh token stops working', async (t) => {
    const user = await newUser(app)
    clock.advance(10)
    const res = await post(app, '/token/refresh/', { refresh: user.refresh })
    t.equal(res.status, 200)
    t.same(Object.keys(res.body).sort(), ['access', 'access_expiration', 'refresh', 'refresh_expiration'])
    t.not(res.body.refresh, user.refresh)
    t.not(res.body.access, user.access)
    t.ok(isIso8601(res.body.access_expiration))
    t.ok(isIso8601(res.body.refresh_expiration))
    t.equal(jwtPayload(res.body.access).sub, user.id)
    t.equal((await get(app, '/user/', res.body.access)).status, 200)

    const old = await post(app, '/token/refresh/', { refresh: user.refresh })
    expectError(t, old, 401, 'AUTH_KIT_INVALID_REFRESH_TOKEN')
  })

  t.test('the rotated refresh token works in turn', async (t) => {
    const user = await newUser(app)
    const first = await post(app, '/token/refresh/', { refresh: user.refresh })
    const second = await post(app, '/token/refresh/', { refresh: first.body.refresh })
    t.equal(second.status, 200)
    t.type(second.body.refresh, 'string')
  })

  t.test('a refresh keeps the amr of the login', async (t) => {
    const user = await userWithApp(app, clock)
    const step1 = await startLogin(app, user)
    const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.secret, clock.now()) })
    const res = await post(app, '/token/refresh/', { refresh: step2.body.refresh })
    t.same(jwtPayload(res.body.access).amr, ['pwd', 'mfa'])
  })

  t.test('an expired refresh token is a 401 AUTH_KIT_INVALID_REFRESH_TOKEN', async (t) => {
    const user = await newUser(app)
    clock.advance(600)
    const res = await post(app, '/token/refresh/', { refresh: user.refresh })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_REFRESH_TOKEN')
  })

  t.test('an unknown refresh token is a 401 AUTH_KIT_INVALID_REFRESH_TOKEN', async (t) => {
    const res = await post(app, '/token/refresh/', { refresh: 'not-a-refresh-token' })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_REFRESH_TOKEN')
  })

  t.test('an access token is not a refresh token', async (t) => {
    const user = await newUser(app)
    const res = await post(app, '/token/refresh/', { refresh: user.access })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_REFRESH_TOKEN')
  })

  t.test('a body without refresh is a 400 FST_ERR_VALIDATION', async (t) => {
    const res = await post(app, '/token/refresh/', {})
    expectError(t, res, 400, 'FST_ERR_VALIDATION')
  })
})

t.test('logout', async (t) => {
  const { app } = await clockedApp(t)

  async function secondSession (user: { username: string, password: string }) {
    return (await post(app, '/login/', { username: user.username, password: user.password })).body as { access: string, refresh: string }
  }

  t.test('logout answers 204 and the caller\'s refresh token stops working', async (t) => {
    const user = await newUser(app)
    const res = await post(app, '/logout/', { refresh: user.refresh }, user.access)
    t.equal(res.status, 204)
    t.equal(res.body, undefined)
    const after = await post(app, '/token/refresh/', { refresh: user.refresh })
    expectError(t, after, 401, 'AUTH_KIT_INVALID_REFRESH_TOKEN')
  })

  t.test('logout leaves the caller\'s other sessions alone', async (t) => {
    const user = await newUser(app)
    const other = await secondSession(user)
    t.equal((await post(app, '/logout/', { refresh: user.refresh }, user.access)).status, 204)
    t.equal((await post(app, '/token/refresh/', { refresh: other.refresh })).status, 200)
  })

  t.test('logout with another user\'s refresh token answers 204 and changes nothing', async (t) => {
    const caller = await newUser(app)
    const victim = await newUser(app)
    t.equal((await post(app, '/logout/', { refresh: victim.refresh }, caller.access)).status, 204)
    t.equal((await post(app, '/token/refresh/', { refresh: victim.refresh })).status, 200)
    t.equal((await post(app, '/token/refresh/', { refresh: caller.refresh })).status, 200, 'nor is the caller\'s own token touched')
  })

  t.test('logout with an unknown or spent refresh token answers 204', async (t) => {
    const user = await newUser(app)
    t.equal((await post(app, '/logout/', { refresh: 'not-a-refresh-token' }, user.access)).status, 204)
    const rotated = await post(app, '/token/refresh/', { refresh: user.refresh })
    t.equal((await post(app, '/logout/', { refresh: user.refresh }, rotated.body.access)).status, 204)
    // 0.2 (SPEC section 3, POST /logout/, and section 9, "Sessions"): the spent
    // token is of the caller's session, so that logout ended the session, and
    // the session's access token no longer authenticates a second logout.
    expectError(t, await post(app, '/logout/', { refresh: user.refresh }, rotated.body.access), 401, 'AUTH_KIT_UNAUTHORIZED', 'twice')
    t.equal((await post(app, '/token/refresh/', { refresh: rotated.body.refresh })).status, 401, 'the session\'s live refresh token ended with it')
  })

  t.test('logout without an access token is a 401 AUTH_KIT_UNAUTHORIZED', async (t) => {
    const user = await newUser(app)
    const res = await post(app, '/logout/', { refresh: user.refresh })
    expectError(t, res, 401, 'AUTH_KIT_UNAUTHORIZED')
    t.equal((await post(app, '/token/refresh/', { refresh: user.refresh })).status, 200, 'nothing was revoked')
  })
})

t.test('access tokens', async (t) => {
  const { app, clock } = await clockedApp(t)

  t.test('GET /user/ answers the user\'s public view', async (t) => {
    const user = await newUser(app)
    const res = await get(app, '/user/', user.access)
    t.equal(res.status, 200)
    t.same(res.body, { user: { id: user.id, username: user.username, email: `${user.username}@example.com` } })
  })

  t.test('GET /user/ without, or with a bad, access token is a 401 AUTH_KIT_UNAUTHORIZED', async (t) => {
    const user = await newUser(app)
    for (const authorization of [undefined, 'Bearer', 'Bearer not.a.jwt', `Basic ${user.access}`, `Bearer ${user.access.slice(0, -2)}xx`]) {
      const res = await app.inject({ method: 'GET', url: `${P}/user/`, headers: authorization === undefined ? {} : { authorization } })
      t.equal(res.statusCode, 401, String(authorization))
      t.equal(res.json().code, 'AUTH_KIT_UNAUTHORIZED')
    }
  })

  t.test('an access token lives accessTokenExpiry seconds', async (t) => {
    const user = await newUser(app)
    clock.advance(299)
    t.equal((await get(app, '/user/', user.access)).status, 200)
    clock.advance(1)
    const res = await get(app, '/user/', user.access)
    expectError(t, res, 401, 'AUTH_KIT_UNAUTHORIZED')
  })

  t.test('an ephemeral token is never an access token', async (t) => {
    const user = await userWithApp(app, clock)
    const step1 = await startLogin(app, user)
    const res = await get(app, '/user/', step1.ephemeral_token)
    expectError(t, res, 401, 'AUTH_KIT_UNAUTHORIZED')
    t.equal((await get(app, '/mfa/', step1.ephemeral_token)).body.code, 'AUTH_KIT_UNAUTHORIZED')
  })

  t.test('a refresh token is not an access token', async (t) => {
    const user = await newUser(app)
    const res = await get(app, '/user/', user.refresh)
    expectError(t, res, 401, 'AUTH_KIT_UNAUTHORIZED')
  })
})

t.test('tokens.accessTokenExpiry and tokens.refreshTokenExpiry are honoured; expirations are ISO 8601', async (t) => {
  const { app, clock } = await clockedApp(t, { tokens: { accessTokenExpiry: 60, refreshTokenExpiry: 3600 } })
  const user = await newUser(app)
  const login = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(login.body.access_expiration, new Date(clock.now() + 60_000).toISOString())
  t.equal(login.body.refresh_expiration, new Date(clock.now() + 3_600_000).toISOString())
  const claims = jwtPayload(login.body.access)
  t.equal(claims.exp - claims.iat, 60)

  clock.advance(59)
  t.equal((await get(app, '/user/', login.body.access)).status, 200)
  clock.advance(1)
  t.equal((await get(app, '/user/', login.body.access)).status, 401)

  const refreshed = await post(app, '/token/refresh/', { refresh: login.body.refresh })
  t.equal(refreshed.status, 200)
  t.equal(refreshed.body.access_expiration, new Date(clock.now() + 60_000).toISOString())
  t.equal(refreshed.body.refresh_expiration, new Date(clock.now() + 3_600_000).toISOString())
  clock.advance(3599)
  t.equal((await post(app, '/token/refresh/', { refresh: refreshed.body.refresh })).status, 200)
  clock.advance(3601)
  const late = await post(app, '/login/', { username: user.username, password: user.password })
  clock.advance(3600)
  t.equal((await post(app, '/token/refresh/', { refresh: late.body.refresh })).body.code, 'AUTH_KIT_INVALID_REFRESH_TOKEN')
})

t.test('app.authKit.authenticate guards a host route', async (t) => {
  const clock = manualClock()
  const app = Fastify({ logger: false })
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, now: clock.now })
  app.get('/host/me', { preHandler: app.authKit.authenticate }, async (request) => ({ id: request.user.id, amr: request.authKitAmr }))
  await app.ready()
  t.teardown(() => app.close())

  const user = await newUser(app)
  const ok = await app.inject({ method: 'GET', url: '/host/me', headers: { authorization: `Bearer ${user.access}` } })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { id: user.id, amr: ['pwd'] })

  const missing = await app.inject({ method: 'GET', url: '/host/me' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.json().code, 'AUTH_KIT_UNAUTHORIZED')
  clock.advance(300)
  const expired = await app.inject({ method: 'GET', url: '/host/me', headers: { authorization: `Bearer ${user.access}` } })
  t.equal(expired.statusCode, 401)
  t.equal(expired.json().code, 'AUTH_KIT_UNAUTHORIZED')
})

for (const order of ['before', 'after'] as const) {
  t.test(`a host's own @fastify/jwt registered ${order} the plugin keeps working`, async (t) => {
    const clock = manualClock()
    const app = Fastify({ logger: false })
    const options = { secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, now: clock.now } as AuthKitOptions
    if (order === 'before') await app.register(fastifyJwt, { secret: 'the host application\'s own jwt secret' })
    await app.register(authKitMfa, options)
    if (order === 'after') await app.register(fastifyJwt, { secret: 'the host application\'s own jwt secret' })
    app.get('/host/token', async () => ({ token: app.jwt.sign({ sub: 'host-user', role: 'admin' }) }))
    app.get('/host/private', async (request) => {
      const claims = await request.jwtVerify<{ sub: string, role: string }>()
      return { sub: claims.sub, role: claims.role }
    })
    await app.ready()
    t.teardown(() => app.close())

    const hostToken = (await app.inject({ method: 'GET', url: '/host/token' })).json().token as string
    const hostRoute = await app.inject({ method: 'GET', url: '/host/private', headers: { authorization: `Bearer ${hostToken}` } })
    t.equal(hostRoute.statusCode, 200)
    t.same(hostRoute.json(), { sub: 'host-user', role: 'admin' })

    const user = await newUser(app)
    t.equal((await get(app, '/user/', user.access)).status, 200, 'the plugin\'s own tokens work')
    const foreign = await get(app, '/user/', hostToken)
    expectError(t, foreign, 401, 'AUTH_KIT_UNAUTHORIZED', 'a host token is not the plugin\'s access token')
  })
}

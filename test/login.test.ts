import t from 'tap'
import { Kysely, SqliteDialect } from 'kysely'
import SQLite from 'better-sqlite3'
import { AppHandler } from '../src/index.js'
import { P, buildApp, get, manualClock, newUser, post, totp, userWithApp, expectError, clockedApp } from './helpers/app.js'
import { SecondAppHandler, enableTotp, isIso8601, jwtPayload, startLogin, wrongCode } from './helpers/flows.js'

const twoApps = { mfa: { handlers: [AppHandler, SecondAppHandler] } }

t.test('step 1', async (t) => {
  const { app, clock } = await clockedApp(t, { ...twoApps })

  t.test('a user without an active method gets tokens and the user at once', async (t) => {
    const user = await newUser(app)
    const res = await post(app, '/login/', { username: user.username, password: user.password })
    t.equal(res.status, 200)
    t.same(Object.keys(res.body).sort(), ['access', 'access_expiration', 'mfa_enabled', 'refresh', 'refresh_expiration', 'user'])
    t.equal(res.body.mfa_enabled, false)
    t.same(res.body.user, { id: user.id, username: user.username, email: `${user.username}@example.com` })
    t.ok(isIso8601(res.body.access_expiration))
    t.ok(isIso8601(res.body.refresh_expiration))
  })

  t.test('a method that was created but not confirmed asks for no second step', async (t) => {
    const user = await newUser(app)
    t.equal((await post(app, '/mfa/', { method: 'app' }, user.access)).status, 201)
    const res = await post(app, '/login/', { username: user.username, password: user.password })
    t.equal(res.status, 200)
    t.equal(res.body.mfa_enabled, false)
    t.type(res.body.access, 'string')
  })

  t.test('an MFA user gets an ephemeral token, the primary method and every active method in handler order', async (t) => {
    const user = await newUser(app)
    // second_app is confirmed first (so primary), app second: the list still follows mfa.handlers.
    const first = await enableTotp(app, user.access, clock, 'second_app')
    await enableTotp(app, first.access, clock, 'app')
    const res = await post(app, '/login/', { username: user.username, password: user.password })
    t.equal(res.status, 200)
    t.same(Object.keys(res.body).sort(), ['ephemeral_token', 'method', 'methods', 'mfa_enabled'])
    t.equal(res.body.mfa_enabled, true)
    t.equal(res.body.method, 'second_app')
    t.same(res.body.methods, ['app', 'second_app'])
    t.type(res.body.ephemeral_token, 'string')
    t.ok(res.body.ephemeral_token.length >= 22, 'at least 128 bits')
  })

  t.test('a wrong password and an unknown user get the same 401 AUTH_KIT_INVALID_CREDENTIALS', async (t) => {
    const user = await newUser(app)
    const wrong = await post(app, '/login/', { username: user.username, password: 'not the password' })
    const unknown = await post(app, '/login/', { username: 'nobody-at-all', password: 'not the password' })
    expectError(t, wrong, 401, 'AUTH_KIT_INVALID_CREDENTIALS')
    t.same(wrong.body, unknown.body)
  })

  t.test('a body without the password is a 400 FST_ERR_VALIDATION', async (t) => {
    const res = await post(app, '/login/', { username: 'someone' })
    expectError(t, res, 400, 'FST_ERR_VALIDATION')
  })
})

t.test('step 2', async (t) => {
  const { app, clock } = await clockedApp(t, { ...twoApps, mfa: { ...twoApps.mfa, maxAttemptsPerToken: 3, ephemeralTokenExpiry: 120 } })

  t.test('a TOTP code of the attempt\'s method finishes the login', async (t) => {
    const user = await userWithApp(app, clock)
    const step1 = await startLogin(app, user)
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.secret, clock.now()) })
    t.equal(res.status, 200)
    t.same(Object.keys(res.body).sort(), ['access', 'access_expiration', 'refresh', 'refresh_expiration', 'user'])
    t.same(res.body.user, { id: user.id, username: user.username, email: `${user.username}@example.com` })
    const me = await get(app, '/user/', res.body.access)
    t.equal(me.status, 200)
    t.equal(me.body.user.id, user.id)
  })

  t.test('a backup code of the attempt\'s method finishes the login', async (t) => {
    const user = await userWithApp(app, clock)
    const step1 = await startLogin(app, user)
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: user.backupCodes[0] })
    t.equal(res.status, 200)
    t.type(res.body.access, 'string')
  })

  t.test('a backup code of another active method finishes the login', async (t) => {
    const user = await userWithApp(app, clock)
    const second = await enableTotp(app, user.access, clock, 'second_app')
    const step1 = await startLogin(app, user)
    t.equal(step1.method, 'app')
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: second.backupCodes[3] })
    t.equal(res.status, 200)
  })

  t.test('a backup code of a method that is not active is refused', async (t) => {
    const user = await userWithApp(app, clock)
    const pending = await post(app, '/mfa/', { method: 'second_app' }, user.access)
    const step1 = await startLogin(app, user)
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: pending.body.backup_codes[0] })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_CODE')
  })

  t.test('a wrong code is a 401 AUTH_KIT_INVALID_CODE and the attempt goes on', async (t) => {
    const user = await userWithApp(app, clock)
    const step1 = await startLogin(app, user)
    const right = await totp(user.secret, clock.now())
    const bad = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: wrongCode(right) })
    t.equal(bad.status, 401)
    t.same(Object.keys(bad.body).sort(), ['code', 'error', 'message', 'statusCode'])
    t.equal(bad.body.code, 'AUTH_KIT_INVALID_CODE')
    const good = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: right })
    t.equal(good.status, 200)
  })

  t.test('the ephemeral token is good for one successful verify', async (t) => {
    const user = await userWithApp(app, clock)
    const step1 = await startLogin(app, user)
    t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: user.backupCodes[0] })).status, 200)
    clock.advance(30)
    const again = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.secret, clock.now()) })
    expectError(t, again, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  })

  t.test('an unknown ephemeral token is a 401 AUTH_KIT_INVALID_EPHEMERAL_TOKEN', async (t) => {
    const res = await post(app, '/login/verify/', { ephemeral_token: 'not-a-token', code: '123456' })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  })

  t.test('an attempt lives ephemeralTokenExpiry seconds', async (t) => {
    const user = await userWithApp(app, clock)
    const early = await startLogin(app, user)
    clock.advance(119)
    t.equal((await post(app, '/login/verify/', { ephemeral_token: early.ephemeral_token, code: user.backupCodes[0] })).status, 200, 'alive just before')
    const late = await startLogin(app, user)
    clock.advance(120)
    const res = await post(app, '/login/verify/', { ephemeral_token: late.ephemeral_token, code: user.backupCodes[1] })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
    // The refused backup code was not spent.
    const fresh = await startLogin(app, user)
    t.equal((await post(app, '/login/verify/', { ephemeral_token: fresh.ephemeral_token, code: user.backupCodes[1] })).status, 200)
  })

  t.test('maxAttemptsPerToken wrong codes kill the attempt; the killing code still gets AUTH_KIT_INVALID_CODE', async (t) => {
    const user = await userWithApp(app, clock)
    const step1 = await startLogin(app, user)
    const right = await totp(user.secret, clock.now())
    for (let i = 0; i < 3; i++) {
      const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: wrongCode(right) })
      expectError(t, res, 401, 'AUTH_KIT_INVALID_CODE', `wrong code ${i + 1}`)
    }
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: right })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
    const backup = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: user.backupCodes[0] })
    t.equal(backup.body.code, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
    // A new attempt still works: the right code was not spent on the dead one.
    const fresh = await startLogin(app, user)
    t.equal((await post(app, '/login/verify/', { ephemeral_token: fresh.ephemeral_token, code: right })).status, 200)
  })

  t.test('an attempt dies once its method is deactivated', async (t) => {
    const user = await userWithApp(app, clock)
    const second = await enableTotp(app, user.access, clock, 'second_app')
    clock.advance(30)
    const step1 = await startLogin(app, user)
    t.equal((await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'second_app' })).status, 200)
    const off = await post(app, '/mfa/deactivate/', { method: 'second_app', code: await totp(second.secret, clock.now()) }, user.access)
    t.equal(off.status, 200)
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: user.backupCodes[0] })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  })

  t.test('an attempt dies once its method is deleted', async (t) => {
    const user = await userWithApp(app, clock)
    await enableTotp(app, user.access, clock, 'second_app')
    clock.advance(30)
    const step1 = await startLogin(app, user)
    t.equal(step1.method, 'app')
    const del = await post(app, '/mfa/delete/', { method: 'app', code: await totp(user.secret, clock.now()) }, user.access)
    t.equal(del.status, 204)
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: user.backupCodes[0] })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  })
})

t.test('change-method and resend', async (t) => {
  const { app, clock } = await clockedApp(t, { ...twoApps, mfa: { ...twoApps.mfa, maxAttemptsPerToken: 3, ephemeralTokenExpiry: 120 } })

  async function userWithBoth () {
    const user = await userWithApp(app, clock)
    const second = await enableTotp(app, user.access, clock, 'second_app')
    clock.advance(30)
    return { ...user, second }
  }

  t.test('change-method binds the same token to the other active method', async (t) => {
    const user = await userWithBoth()
    const step1 = await startLogin(app, user)
    const res = await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'second_app' })
    t.equal(res.status, 200)
    t.same(res.body, { ephemeral_token: step1.ephemeral_token, method: 'second_app' })
    const old = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.secret, clock.now()) })
    expectError(t, old, 401, 'AUTH_KIT_INVALID_CODE', 'a TOTP code of the former method is no longer the attempt\'s code')
    const res2 = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.second.secret, clock.now()) })
    t.equal(res2.status, 200)
    t.same(jwtPayload(res2.body.access).amr, ['pwd', 'mfa'])
  })

  t.test('change-method back and forth keeps working', async (t) => {
    const user = await userWithBoth()
    const step1 = await startLogin(app, user)
    t.equal((await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'second_app' })).status, 200)
    const back = await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'app' })
    t.same(back.body, { ephemeral_token: step1.ephemeral_token, method: 'app' })
    t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.secret, clock.now()) })).status, 200)
  })

  t.test('change-method to the attempt\'s own method is a 400 AUTH_KIT_SAME_METHOD', async (t) => {
    const user = await userWithBoth()
    const step1 = await startLogin(app, user)
    const res = await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'app' })
    expectError(t, res, 400, 'AUTH_KIT_SAME_METHOD')
  })

  t.test('change-method to a method the user has not activated is a 404 AUTH_KIT_METHOD_NOT_FOUND', async (t) => {
    const user = await userWithApp(app, clock)
    await post(app, '/mfa/', { method: 'second_app' }, user.access)
    const step1 = await startLogin(app, user)
    const res = await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'second_app' })
    expectError(t, res, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
  })

  t.test('change-method to an unknown method name is a 400 FST_ERR_VALIDATION', async (t) => {
    const user = await userWithBoth()
    const step1 = await startLogin(app, user)
    const res = await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'sms' })
    expectError(t, res, 400, 'FST_ERR_VALIDATION')
  })

  t.test('change-method with a dead token is a 401 AUTH_KIT_INVALID_EPHEMERAL_TOKEN', async (t) => {
    const res = await post(app, '/login/change-method/', { ephemeral_token: 'nope', new_method: 'second_app' })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  })

  t.test('change-method does not reset the failure count', async (t) => {
    const user = await userWithBoth()
    const step1 = await startLogin(app, user)
    for (let i = 0; i < 2; i++) t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: 'ZZZZZZ' })).body.code, 'AUTH_KIT_INVALID_CODE')
    t.equal((await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'second_app' })).status, 200)
    t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: 'ZZZZZZ' })).body.code, 'AUTH_KIT_INVALID_CODE')
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.second.secret, clock.now()) })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  })

  t.test('change-method does not carry an attempt past its first expiry', async (t) => {
    const user = await userWithBoth()
    const step1 = await startLogin(app, user)
    clock.advance(100)
    t.equal((await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'second_app' })).status, 200)
    clock.advance(30)
    const res = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.second.secret, clock.now()) })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  })

  t.test('resend for the app method is a 400 AUTH_KIT_METHOD_NOT_DISPATCHABLE', async (t) => {
    const user = await userWithApp(app, clock)
    const step1 = await startLogin(app, user)
    const res = await post(app, '/login/resend/', { ephemeral_token: step1.ephemeral_token })
    expectError(t, res, 400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE')
    t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.secret, clock.now()) })).status, 200, 'the attempt is untouched')
  })

  t.test('resend with a dead token is a 401 AUTH_KIT_INVALID_EPHEMERAL_TOKEN', async (t) => {
    const res = await post(app, '/login/resend/', { ephemeral_token: 'nope' })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  })
})

t.test('access tokens carry sub and amr', async (t) => {
  const { app, clock } = await clockedApp(t)
  const plain = await newUser(app)
  const pwdOnly = jwtPayload(plain.access)
  t.equal(pwdOnly.sub, plain.id)
  t.same(pwdOnly.amr, ['pwd'])

  const user = await userWithApp(app, clock)
  const step1 = await startLogin(app, user)
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(user.secret, clock.now()) })
  const claims = jwtPayload(step2.body.access)
  t.equal(claims.sub, user.id)
  t.same(claims.amr, ['pwd', 'mfa'])
  t.equal(claims.iat, Math.floor(clock.now() / 1000), 'iat follows the now option')
  t.equal(claims.exp, Math.floor(clock.now() / 1000) + 300)
})

t.test('mfa.enabled false: login is one step for everyone and the MFA routes are not registered', async (t) => {
  const clock = manualClock()
  const sqlite = new SQLite(':memory:')
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqlite }) })
  t.teardown(() => db.destroy())
  const withMfa = await buildApp({ now: clock.now, database: db })
  const user = await userWithApp(withMfa, clock)
  await withMfa.close()

  const app = await buildApp({ now: clock.now, database: db, mfa: { enabled: false } })
  t.teardown(() => app.close())
  const res = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(res.status, 200)
  t.equal(res.body.mfa_enabled, false)
  t.same(jwtPayload(res.body.access).amr, ['pwd'])
  t.equal((await get(app, '/user/', res.body.access)).status, 200)
  for (const url of ['/login/verify/', '/login/change-method/', '/login/resend/', '/mfa/', '/mfa/confirm/', '/mfa/primary/', '/mfa/deactivate/', '/mfa/delete/', '/mfa/send/', '/mfa/backup-codes/']) {
    t.equal((await post(app, url, {}, res.body.access)).status, 404, `POST ${url}`)
  }
  t.equal((await get(app, '/mfa/', res.body.access)).status, 404, 'GET /mfa/')
})

t.test('every path works with and without its trailing slash', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await userWithApp(app, clock)
  const step1 = await post(app, '/login', { username: user.username, password: user.password })
  t.equal(step1.status, 200)
  t.equal(step1.body.mfa_enabled, true)
  t.equal((await post(app, '/login/resend', { ephemeral_token: step1.body.ephemeral_token })).body.code, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE')
  t.equal((await post(app, '/login/change-method', { ephemeral_token: step1.body.ephemeral_token, new_method: 'app' })).body.code, 'AUTH_KIT_SAME_METHOD')
  const step2 = await post(app, '/login/verify', { ephemeral_token: step1.body.ephemeral_token, code: await totp(user.secret, clock.now()) })
  t.equal(step2.status, 200)
  const refreshed = await post(app, '/token/refresh', { refresh: step2.body.refresh })
  t.equal(refreshed.status, 200)
  t.equal((await get(app, '/user', refreshed.body.access)).status, 200)
  t.equal((await get(app, '/mfa', refreshed.body.access)).status, 200)
  t.equal((await post(app, '/logout', { refresh: refreshed.body.refresh }, refreshed.body.access)).status, 204)
})

t.test('login answers send Cache-Control: no-store', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await userWithApp(app, clock)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.match(step1.headers['cache-control'], /no-store/)
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(user.secret, clock.now()) })
  t.match(step2.headers['cache-control'], /no-store/)
  const refreshed = await post(app, '/token/refresh/', { refresh: step2.body.refresh })
  t.match(refreshed.headers['cache-control'], /no-store/)
  const failed = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: '000000' })
  t.match(failed.headers['cache-control'], /no-store/)
  const plain = await newUser(app)
  const direct = await app.inject({ method: 'POST', url: `${P}/login/`, payload: { username: plain.username, password: plain.password } })
  t.match(direct.headers['cache-control'], /no-store/)
})

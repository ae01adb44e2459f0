import t from 'tap'
import { get, newUser, post, secretOf, totp, expectError, clockedApp } from '../helpers/app.js'
import { jwtPayload } from '../helpers/flows.js'

// SPEC section 3 "Methods", rule 1 and section 9 "Step-up": a token from a
// login without a second factor can never add or change a factor once the
// user has one.

const { app, clock } = await clockedApp(t)

/** A user whose one-step login token (amr ["pwd"]) predates their first method. */
async function userWithStaleToken () {
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  const secret = secretOf(created.body.setup_data.qr_link)
  t.equal((await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, user.access)).status, 200)
  clock.advance(30)
  return { ...user, secret, backupCodes: created.body.backup_codes as string[] }
}

t.test('a password-only token is refused on every route that changes a factor once a method is active', async (t) => {
  const user = await userWithStaleToken()
  t.same(jwtPayload(user.access).amr, ['pwd'])
  const gated: Array<[string, string, unknown]> = [
    ['POST', '/mfa/', { method: 'app' }],
    ['POST', '/mfa/confirm/', { method: 'app', code: '123456' }],
    ['POST', '/mfa/primary/', { method: 'app', primary_code: '123456' }],
    ['POST', '/mfa/deactivate/', { method: 'app', code: '123456' }],
    ['POST', '/mfa/delete/', { method: 'app', code: '123456' }],
    ['POST', '/mfa/backup-codes/', { method: 'app', code: '123456' }],
    // Checked before the body: a body the schema refuses still gets the gate's answer.
    ['POST', '/mfa/', { method: 42 }],
  ]
  for (const [method, url, body] of gated) {
    const res = await app.inject({ method: method as 'POST', url: `/api/auth${url}`, payload: body as object, headers: { authorization: `Bearer ${user.access}` } })
    t.equal(res.statusCode, 401, `${method} ${url} ${JSON.stringify(body)}`)
    t.equal(res.json().code, 'AUTH_KIT_STEP_UP_REQUIRED')
    t.match(res.headers['www-authenticate'], /^Bearer error="insufficient_user_authentication"/, 'RFC 9470 challenge')
  }
  t.equal((await get(app, '/mfa/', user.access)).status, 200, 'GET /mfa/ stays open')
  const methods = (await get(app, '/mfa/', user.access)).body
  t.equal(methods.find((m: { name: string }) => m.name === 'app').is_active, true, 'nothing changed')
})

t.test('the attack of issue 8: a kept refresh token cannot add an authenticator app after MFA was turned on', async (t) => {
  const user = await userWithStaleToken()
  // An hour later, the attacker refreshes the stolen pre-MFA refresh token.
  clock.advance(3600)
  const refreshed = await post(app, '/token/refresh/', { refresh: user.refresh })
  t.equal(refreshed.status, 200)
  t.same(jwtPayload(refreshed.body.access).amr, ['pwd'], 'refresh never adds a factor')
  const added = await post(app, '/mfa/', { method: 'app' }, refreshed.body.access)
  expectError(t, added, 401, 'AUTH_KIT_STEP_UP_REQUIRED')
})

t.test('step-up turns the token into one that passes, keeping the session', async (t) => {
  const user = await userWithStaleToken()
  const before = jwtPayload(user.access)
  const up = await post(app, '/login/step-up/', { code: await totp(user.secret, clock.now()) }, user.access)
  t.equal(up.status, 200)
  t.same(Object.keys(up.body).sort(), ['access', 'access_expiration'])
  const claims = jwtPayload(up.body.access)
  t.same(claims.amr, ['pwd', 'mfa'])
  t.equal(claims.sid, before.sid, 'same session')
  t.equal(claims.auth_time, Math.floor(clock.now() / 1000), 'auth_time is now, in seconds')
  t.equal((await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[0] }, up.body.access)).status, 200)
  // Later refreshes of that session keep the raised amr and auth_time.
  clock.advance(60)
  const refreshed = await post(app, '/token/refresh/', { refresh: user.refresh })
  t.equal(refreshed.status, 200)
  t.same(jwtPayload(refreshed.body.access).amr, ['pwd', 'mfa'])
  t.equal(jwtPayload(refreshed.body.access).auth_time, claims.auth_time)
})

t.test('step-up keeps the rules of every code check', async (t) => {
  const user = await userWithStaleToken()
  const code = await totp(user.secret, clock.now())
  t.equal((await post(app, '/login/step-up/', { code }, user.access)).status, 200)
  const replay = await post(app, '/login/step-up/', { code }, user.access)
  expectError(t, replay, 403, 'AUTH_KIT_INVALID_CODE', 'a TOTP step is accepted once')

  const backup = user.backupCodes[1]
  t.equal((await post(app, '/login/step-up/', { code: backup }, user.access)).status, 200, 'a backup code works')
  t.equal((await post(app, '/login/step-up/', { code: backup }, user.access)).status, 403, 'once')

  const other = await userWithStaleToken()
  for (let i = 0; i < 9; i++) t.equal((await post(app, '/login/step-up/', { code: '000000' }, other.access)).status, 403)
  const tenth = await post(app, '/login/step-up/', { code: '000000' }, other.access)
  t.equal(tenth.status, 403, 'the wrong code that starts the lock gets its own answer')
  const locked = await post(app, '/login/step-up/', { code: await totp(other.secret, clock.now()) }, other.access)
  expectError(t, locked, 429, 'AUTH_KIT_TOO_MANY_ATTEMPTS', 'the lockout counts step-up codes')
  t.ok(Number(locked.headers['retry-after']) > 0)
})

t.test('step-up for a user without an active method is a 404', async (t) => {
  const user = await newUser(app)
  const res = await post(app, '/login/step-up/', { code: '123456' }, user.access)
  expectError(t, res, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
})

t.test('a user with no active method may set up the first one with a password-only token', async (t) => {
  const user = await newUser(app)
  t.equal((await post(app, '/mfa/', { method: 'app' }, user.access)).status, 201)
})

t.test('access tokens carry sub, sid, amr and auth_time', async (t) => {
  const user = await newUser(app)
  const claims = jwtPayload(user.access)
  t.equal(claims.sub, user.id)
  t.type(claims.sid, 'string')
  t.same(claims.amr, ['pwd'])
  t.equal(claims.auth_time, Math.floor(clock.now() / 1000))
})

t.test('GET /mfa/qr/ serves the pending method\'s QR code as an SVG image, and 404 once it is active', async (t) => {
  const user = await newUser(app)
  t.equal((await get(app, '/mfa/qr/?method=app', user.access)).status, 404, 'nothing created yet')
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  const qr = await app.inject({ method: 'GET', url: '/api/auth/mfa/qr/?method=app', headers: { authorization: `Bearer ${user.access}` } })
  t.equal(qr.statusCode, 200)
  t.match(qr.headers['content-type'], /^image\/svg\+xml/)
  t.equal(qr.headers['cache-control'], 'no-store')
  t.match(qr.body, /^<svg[\s\S]*<\/svg>\s*$/)
  t.equal(Buffer.from(created.body.setup_data.qr_code.split(',')[1], 'base64').toString(), qr.body, 'the same code as setup_data.qr_code')
  const secret = secretOf(created.body.setup_data.qr_link)
  await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, user.access)
  clock.advance(30)
  const up = await post(app, '/login/step-up/', { code: await totp(secret, clock.now()) }, user.access)
  const after = await get(app, '/mfa/qr/?method=app', up.body.access)
  expectError(t, after, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
  t.equal((await get(app, '/mfa/qr/?method=nope', up.body.access)).status, 400, 'an unknown method name')
})

t.test('an older password-only token of a session that stepped up still meets the gate', async (t) => {
  const user = await userWithStaleToken()
  const up = await post(app, '/login/step-up/', { code: await totp(user.secret, clock.now()) }, user.access)
  t.equal(up.status, 200)
  const old = await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[0] }, user.access)
  expectError(t, old, 401, 'AUTH_KIT_STEP_UP_REQUIRED', 'the token, not its session, must carry mfa')
  t.equal((await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[0] }, up.body.access)).status, 200)
})

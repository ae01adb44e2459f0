import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { AppHandler } from '../src/index.js'
import { buildApp, expectError, get, manualClock, newUser, post, secretOf, totp, userWithApp, clockedApp } from './helpers/app.js'
import { SecondAppHandler, type Clock, enableTotp, startLogin, stepUp, svgIsQrCodeOf, wrongCode } from './helpers/flows.js'

class ThirdAppHandler extends AppHandler {
  static override NAME = 'third_app'
  static override DISPLAY_NAME = 'Third Authenticator'
  static override REQUIRES_DISPATCH = false
}

const CROCKFORD_GROUP = '[0-9ABCDEFGHJKMNPQRSTVWXYZ]'
const handlers = [AppHandler, SecondAppHandler]
// Long-lived access tokens: these tests move the clock a lot.
const base = { tokens: { accessTokenExpiry: 86400 } }
// Backup codes under a keyed hash instead of scrypt, where hashing is not the subject, to keep the file fast.
const quick = { backupCodes: { secureHash: false } }

async function methodsOf (app: FastifyInstance, access: string) {
  const res = await get(app, '/mfa/', access)
  if (res.status !== 200) throw new Error(`GET /mfa/ failed: ${JSON.stringify(res.body)}`)
  return Object.fromEntries((res.body as Array<Record<string, any>>).map((m) => [m.name, m]))
}

/** A user with app (primary) and second_app, both active; clock moved past both confirm steps. */
async function userWithTwo (app: FastifyInstance, clock: Clock) {
  const user = await userWithApp(app, clock)
  const second = await enableTotp(app, user.access, clock, 'second_app')
  clock.advance(30)
  return { ...user, second }
}

async function verifies (app: FastifyInstance, user: { username: string, password: string }, code: string): Promise<number> {
  const step1 = await startLogin(app, user)
  return (await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code })).status
}

t.test('GET /mfa/', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers: [SecondAppHandler, AppHandler], ...quick } })
  t.teardown(() => app.close())

  t.test('lists every configured method in mfa.handlers order, not set up', async (t) => {
    const user = await newUser(app)
    const res = await get(app, '/mfa/', user.access)
    t.equal(res.status, 200)
    t.same(res.body, [
      { name: 'second_app', display_name: 'Second Authenticator', is_active: false, is_primary: false, is_setup: false, requires_dispatch: false, backup_codes_remaining: 0 },
      { name: 'app', display_name: 'Authenticator App', is_active: false, is_primary: false, is_setup: false, requires_dispatch: false, backup_codes_remaining: 0 },
    ])
    t.match(res.headers['cache-control'], /no-store/)
  })

  t.test('shows a created method as set up and inactive, and a confirmed one as active and primary', async (t) => {
    const user = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    let m = await methodsOf(app, user.access)
    t.same(m.app, { name: 'app', display_name: 'Authenticator App', is_active: false, is_primary: false, is_setup: true, requires_dispatch: false, backup_codes_remaining: 10 })
    t.equal(m.second_app.is_setup, false)
    await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secretOf(created.body.setup_data.qr_link), clock.now()) }, user.access)
    m = await methodsOf(app, user.access)
    t.same(m.app, { name: 'app', display_name: 'Authenticator App', is_active: true, is_primary: true, is_setup: true, requires_dispatch: false, backup_codes_remaining: 10 })
    const again = await get(app, '/mfa', user.access)
    t.same(again.body.map((x: { name: string }) => x.name), ['second_app', 'app'], 'order holds, without the trailing slash too')
  })

  t.test('needs auth', async (t) => {
    const res = await get(app, '/mfa/')
    expectError(t, res, 401, 'AUTH_KIT_UNAUTHORIZED')
  })
})

t.test('POST /mfa/ (create)', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, applicationName: 'Acme Corp', ...quick } })
  t.teardown(() => app.close())

  t.test('answers 201 {method, backup_codes, setup_data: {qr_link, qr_code}} with no-store', async (t) => {
    const user = await newUser(app)
    const res = await post(app, '/mfa/', { method: 'app' }, user.access)
    t.equal(res.status, 201)
    t.same(Object.keys(res.body).sort(), ['backup_codes', 'method', 'setup_data'])
    t.equal(res.body.method, 'app')
    t.same(Object.keys(res.body.setup_data).sort(), ['qr_code', 'qr_link'])
    t.match(res.headers['cache-control'], /no-store/)
  })

  t.test('qr_link follows the Key URI format with the issuer in label and parameter', async (t) => {
    const user = await newUser(app)
    const { qr_link: link } = (await post(app, '/mfa/', { method: 'app' }, user.access)).body.setup_data
    const url = new URL(link)
    t.equal(url.protocol, 'otpauth:')
    t.equal(url.host, 'totp')
    t.equal(decodeURIComponent(url.pathname.slice(1)), `Acme Corp:${user.username}`)
    t.equal(url.searchParams.get('issuer'), 'Acme Corp')
    t.match(url.searchParams.get('secret'), /^[A-Z2-7]{16,}=*$/)
    t.ok(Buffer.from(url.searchParams.get('secret')!.replace(/=+$/, ''), 'ascii').length * 5 / 8 >= 16, 'at least 128 bits of secret')
    for (const [key, expected] of [['algorithm', 'SHA1'], ['digits', '6'], ['period', '30']]) {
      const value = url.searchParams.get(key)
      if (value !== null) t.equal(value, expected, key)
    }
  })

  t.test('qr_code is an SVG data URL of the QR code of the same link', async (t) => {
    const user = await newUser(app)
    const { qr_link: link, qr_code: code } = (await post(app, '/mfa/', { method: 'app' }, user.access)).body.setup_data
    const match = /^data:image\/svg\+xml(;base64)?,(.*)$/s.exec(code)
    t.ok(match, 'an SVG data URL')
    const svg = match![1] === ';base64' ? Buffer.from(match![2], 'base64').toString('utf8') : decodeURIComponent(match![2])
    t.match(svg, /^(<\?xml[^>]*>\s*)?<svg[\s>]/)
    t.ok(svgIsQrCodeOf(svg, link), 'the QR code encodes qr_link')
    const other = await newUser(app)
    const otherLink = (await post(app, '/mfa/', { method: 'app' }, other.access)).body.setup_data.qr_link
    t.notOk(svgIsQrCodeOf(svg, otherLink), 'and not another link')
  })

  t.test('backup codes: ten of 16 Crockford characters, in groups of four joined by "-"', async (t) => {
    const user = await newUser(app)
    const codes: string[] = (await post(app, '/mfa/', { method: 'app' }, user.access)).body.backup_codes
    t.equal(codes.length, 10)
    for (const code of codes) t.match(code, new RegExp(`^${CROCKFORD_GROUP}{4}(-${CROCKFORD_GROUP}{4}){3}$`))
    t.equal(new Set(codes).size, 10, 'all different')
  })

  t.test('creating a method twice is a 409 AUTH_KIT_METHOD_EXISTS, inactive or active', async (t) => {
    const user = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    const again = await post(app, '/mfa/', { method: 'app' }, user.access)
    expectError(t, again, 409, 'AUTH_KIT_METHOD_EXISTS')
    // The first setup still stands: its secret confirms the method.
    const secret = secretOf(created.body.setup_data.qr_link)
    const confirm = await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, user.access)
    t.equal(confirm.status, 200)
    // Now that a method is active, create wants a token carrying mfa (SPEC section 3, "Methods").
    clock.advance(30)
    const access = await stepUp(app, user.access, await totp(secret, clock.now()))
    const active = await post(app, '/mfa/', { method: 'app' }, access)
    expectError(t, active, 409, 'AUTH_KIT_METHOD_EXISTS')
  })

  t.test('an unknown method name is a 400 FST_ERR_VALIDATION', async (t) => {
    const user = await newUser(app)
    for (const method of ['sms', 'APP', '', 42]) {
      const res = await post(app, '/mfa/', { method }, user.access)
      expectError(t, res, 400, 'FST_ERR_VALIDATION', String(method))
    }
  })

  t.test('needs auth', async (t) => {
    const res = await post(app, '/mfa/', { method: 'app' })
    expectError(t, res, 401, 'AUTH_KIT_UNAUTHORIZED')
  })
})

t.test('mfa.backupCodes.count and mfa.backupCodes.length', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { backupCodes: { count: 4, length: 10 } } })
  t.teardown(() => app.close())
  const user = await userWithApp(app, clock)
  t.equal(user.backupCodes.length, 4)
  for (const code of user.backupCodes) t.match(code, new RegExp(`^${CROCKFORD_GROUP}{4}-${CROCKFORD_GROUP}{4}-${CROCKFORD_GROUP}{2}$`))
  t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 4)
  t.equal(await verifies(app, user, user.backupCodes[2]), 200, 'a code of the configured length works')
  const fresh = await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[0] }, user.access)
  t.equal(fresh.body.backup_codes.length, 4, 'regeneration keeps the count')
})

t.test('POST /mfa/confirm/', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, ...quick } })
  t.teardown(() => app.close())

  t.test('the method\'s own TOTP code activates it and the first active method becomes primary', async (t) => {
    const user = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    const res = await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secretOf(created.body.setup_data.qr_link), clock.now()) }, user.access)
    t.equal(res.status, 200)
    t.same(Object.keys(res.body), ['detail'])
    t.type(res.body.detail, 'string')
    const m = await methodsOf(app, user.access)
    t.equal(m.app.is_active, true)
    t.equal(m.app.is_primary, true)
  })

  t.test('a second confirmed method does not take over the primary', async (t) => {
    const user = await userWithTwo(app, clock)
    const m = await methodsOf(app, user.access)
    t.equal(m.app.is_primary, true)
    t.equal(m.second_app.is_active, true)
    t.equal(m.second_app.is_primary, false)
    t.equal((await startLogin(app, user)).method, 'app')
  })

  t.test('a backup code is refused on confirm', async (t) => {
    const user = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    const res = await post(app, '/mfa/confirm/', { method: 'app', code: created.body.backup_codes[0] }, user.access)
    expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE')
    t.equal((await methodsOf(app, user.access)).app.is_active, false)
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 10, 'the backup code was not spent')
  })

  t.test('a wrong code is a 403 AUTH_KIT_INVALID_CODE', async (t) => {
    const user = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    const right = await totp(secretOf(created.body.setup_data.qr_link), clock.now())
    const res = await post(app, '/mfa/confirm/', { method: 'app', code: wrongCode(right) }, user.access)
    expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE')
    t.equal((await methodsOf(app, user.access)).app.is_active, false)
  })

  t.test('confirming an active method is a 409 AUTH_KIT_METHOD_ALREADY_ACTIVE', async (t) => {
    const user = await userWithApp(app, clock)
    const res = await post(app, '/mfa/confirm/', { method: 'app', code: await totp(user.secret, clock.now()) }, user.access)
    expectError(t, res, 409, 'AUTH_KIT_METHOD_ALREADY_ACTIVE')
  })

  t.test('confirming a method never created is a 404 AUTH_KIT_METHOD_NOT_FOUND', async (t) => {
    const user = await newUser(app)
    const res = await post(app, '/mfa/confirm/', { method: 'app', code: '123456' }, user.access)
    expectError(t, res, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
  })

  t.test('a body without code is a 400 FST_ERR_VALIDATION', async (t) => {
    const user = await newUser(app)
    const res = await post(app, '/mfa/confirm/', { method: 'app' }, user.access)
    expectError(t, res, 400, 'FST_ERR_VALIDATION')
  })
})

t.test('POST /mfa/primary/ with updatePrimaryMethodRequirePrimaryCode on (the default)', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, ...quick } })
  t.teardown(() => app.close())

  t.test('primary_code is required by the schema', async (t) => {
    const user = await userWithTwo(app, clock)
    const res = await post(app, '/mfa/primary/', { method: 'second_app' }, user.access)
    expectError(t, res, 400, 'FST_ERR_VALIDATION')
  })

  t.test('a code of the current primary switches the primary', async (t) => {
    const user = await userWithTwo(app, clock)
    const res = await post(app, '/mfa/primary/', { method: 'second_app', primary_code: await totp(user.secret, clock.now()) }, user.access)
    t.equal(res.status, 200)
    t.same(Object.keys(res.body), ['detail'])
    const m = await methodsOf(app, user.access)
    t.equal(m.second_app.is_primary, true)
    t.equal(m.app.is_primary, false)
    t.equal(m.app.is_active, true)
    const step1 = await startLogin(app, user)
    t.equal(step1.method, 'second_app')
    t.same(step1.methods, ['app', 'second_app'])
  })

  t.test('a backup code of the current primary is accepted', async (t) => {
    const user = await userWithTwo(app, clock)
    const res = await post(app, '/mfa/primary/', { method: 'second_app', primary_code: user.backupCodes[0] }, user.access)
    t.equal(res.status, 200)
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 9)
  })

  t.test('a code of the target method is a 403 AUTH_KIT_INVALID_CODE', async (t) => {
    const user = await userWithTwo(app, clock)
    for (const code of [await totp(user.second.secret, clock.now()), user.second.backupCodes[0]]) {
      const res = await post(app, '/mfa/primary/', { method: 'second_app', primary_code: code }, user.access)
      expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE')
    }
    t.equal((await methodsOf(app, user.access)).app.is_primary, true)
  })

  t.test('a target that is not active is a 404 AUTH_KIT_METHOD_NOT_FOUND', async (t) => {
    const user = await userWithApp(app, clock)
    await post(app, '/mfa/', { method: 'second_app' }, user.access)
    const res = await post(app, '/mfa/primary/', { method: 'second_app', primary_code: await totp(user.secret, clock.now()) }, user.access)
    expectError(t, res, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
  })
})

t.test('POST /mfa/primary/ with updatePrimaryMethodRequirePrimaryCode off', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, updatePrimaryMethodRequirePrimaryCode: false, ...quick } })
  t.teardown(() => app.close())
  const user = await userWithTwo(app, clock)
  const res = await post(app, '/mfa/primary/', { method: 'second_app' }, user.access)
  t.equal(res.status, 200)
  t.equal((await methodsOf(app, user.access)).second_app.is_primary, true)
  t.equal((await startLogin(app, user)).method, 'second_app')
})

t.test('POST /mfa/deactivate/', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, ...quick } })
  t.teardown(() => app.close())

  t.test('the primary is a 403 AUTH_KIT_PRIMARY_METHOD_PROTECTED before any code is checked', async (t) => {
    const user = await userWithTwo(app, clock)
    const wrong = await post(app, '/mfa/deactivate/', { method: 'app', code: '000000' }, user.access)
    expectError(t, wrong, 403, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED')
    const right = await post(app, '/mfa/deactivate/', { method: 'app', code: user.backupCodes[0] }, user.access)
    t.equal(right.body.code, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED')
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 10, 'the code was not looked at')
    t.equal((await methodsOf(app, user.access)).app.is_active, true)
  })

  t.test('a wrong code is a 403 AUTH_KIT_INVALID_CODE', async (t) => {
    const user = await userWithTwo(app, clock)
    for (const code of ['000000', user.backupCodes[0]]) {
      const res = await post(app, '/mfa/deactivate/', { method: 'second_app', code }, user.access)
      expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE')
    }
    t.equal((await methodsOf(app, user.access)).second_app.is_active, true)
  })

  t.test('the method\'s own code deactivates it; it stays set up and leaves the login list', async (t) => {
    const user = await userWithTwo(app, clock)
    const res = await post(app, '/mfa/deactivate/', { method: 'second_app', code: await totp(user.second.secret, clock.now()) }, user.access)
    t.equal(res.status, 200)
    t.same(Object.keys(res.body), ['detail'])
    const m = await methodsOf(app, user.access)
    t.equal(m.second_app.is_active, false)
    t.equal(m.second_app.is_setup, true)
    t.same((await startLogin(app, user)).methods, ['app'])
  })

  t.test('a backup code of the method is accepted', async (t) => {
    const user = await userWithTwo(app, clock)
    const res = await post(app, '/mfa/deactivate/', { method: 'second_app', code: user.second.backupCodes[5] }, user.access)
    t.equal(res.status, 200)
  })

  t.test('a method that is not active is a 404 AUTH_KIT_METHOD_NOT_FOUND', async (t) => {
    const user = await userWithApp(app, clock)
    for (const prepare of [async () => {}, async () => { await post(app, '/mfa/', { method: 'second_app' }, user.access) }]) {
      await prepare()
      const res = await post(app, '/mfa/deactivate/', { method: 'second_app', code: '000000' }, user.access)
      expectError(t, res, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
    }
  })
})

t.test('POST /mfa/delete/ with the default policies', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers: [AppHandler, SecondAppHandler, ThirdAppHandler], ...quick } })
  t.teardown(() => app.close())

  // 0.2 (SPEC section 3, "Methods", POST /mfa/delete/; section 12): code is
  // optional in the schema, and an active method without one is refused as a
  // wrong code would be.
  t.test('an active method without a code is a 403 AUTH_KIT_INVALID_CODE', async (t) => {
    const user = await userWithApp(app, clock)
    expectError(t, await post(app, '/mfa/delete/', { method: 'app' }, user.access), 403, 'AUTH_KIT_INVALID_CODE')
    t.equal((await methodsOf(app, user.access)).app.is_active, true)
  })

  t.test('the code is checked only for an active method', async (t) => {
    const user = await newUser(app)
    await post(app, '/mfa/', { method: 'app' }, user.access)
    const res = await post(app, '/mfa/delete/', { method: 'app', code: '000000' }, user.access)
    t.equal(res.status, 204)
    t.equal(res.body, undefined)
    t.equal((await methodsOf(app, user.access)).app.is_setup, false)
  })

  t.test('an active method with a wrong code is a 403 AUTH_KIT_INVALID_CODE', async (t) => {
    const user = await userWithApp(app, clock)
    const res = await post(app, '/mfa/delete/', { method: 'app', code: '000000' }, user.access)
    expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE')
    t.equal((await methodsOf(app, user.access)).app.is_active, true)
  })

  t.test('the only method deleted with its code: login is one step again and the method can be set up anew', async (t) => {
    const user = await userWithApp(app, clock)
    const res = await post(app, '/mfa/delete/', { method: 'app', code: await totp(user.secret, clock.now()) }, user.access)
    t.equal(res.status, 204)
    const m = await methodsOf(app, user.access)
    t.same([m.app.is_setup, m.app.is_active, m.app.backup_codes_remaining], [false, false, 0])
    const login = await post(app, '/login/', { username: user.username, password: user.password })
    t.equal(login.body.mfa_enabled, false)
    t.equal((await post(app, '/mfa/', { method: 'app' }, user.access)).status, 201)
  })

  t.test('a method the user does not have is a 404 AUTH_KIT_METHOD_NOT_FOUND', async (t) => {
    const user = await newUser(app)
    const res = await post(app, '/mfa/delete/', { method: 'app', code: '000000' }, user.access)
    expectError(t, res, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
  })

  t.test('deleting the primary promotes the active method created first and login still asks for a second step', async (t) => {
    const user = await userWithApp(app, clock)
    // third_app is created before second_app but confirmed after it, and comes last in handler order.
    clock.advance(1)
    const third = await post(app, '/mfa/', { method: 'third_app' }, user.access)
    clock.advance(1)
    const second = await enableTotp(app, user.access, clock, 'second_app')
    t.equal((await post(app, '/mfa/confirm/', { method: 'third_app', code: await totp(secretOf(third.body.setup_data.qr_link), clock.now()) }, user.access)).status, 200)
    clock.advance(30)
    const res = await post(app, '/mfa/delete/', { method: 'app', code: await totp(user.secret, clock.now()) }, user.access)
    t.equal(res.status, 204)
    const m = await methodsOf(app, user.access)
    t.equal(m.third_app.is_primary, true)
    t.equal(m.second_app.is_primary, false)
    const step1 = await startLogin(app, user)
    t.equal(step1.method, 'third_app')
    t.same(step1.methods, ['second_app', 'third_app'])
    t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: second.backupCodes[0] })).status, 200)
  })

  t.test('deleting a method that is not primary leaves the primary alone', async (t) => {
    const user = await userWithTwo(app, clock)
    const res = await post(app, '/mfa/delete/', { method: 'second_app', code: user.second.backupCodes[0] }, user.access)
    t.equal(res.status, 204)
    const m = await methodsOf(app, user.access)
    t.equal(m.app.is_primary, true)
    t.equal(m.second_app.is_setup, false)
  })

  t.test('a deleted method\'s backup codes are gone with it', async (t) => {
    const user = await userWithTwo(app, clock)
    t.equal((await post(app, '/mfa/delete/', { method: 'second_app', code: await totp(user.second.secret, clock.now()) }, user.access)).status, 204)
    t.equal(await verifies(app, user, user.second.backupCodes[1]), 401)
  })
})

t.test('POST /mfa/delete/ policies and their order', async (t) => {
  const clock = manualClock()

  t.test('preventDeleteActiveMethod: an active method is a 403 AUTH_KIT_ACTIVE_METHOD_PROTECTED, an inactive one goes', async (t) => {
    const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, preventDeleteActiveMethod: true, ...quick } })
    t.teardown(() => app.close())
    const user = await userWithTwo(app, clock)
    for (const method of ['app', 'second_app']) {
      const res = await post(app, '/mfa/delete/', { method, code: '000000' }, user.access)
      expectError(t, res, 403, 'AUTH_KIT_ACTIVE_METHOD_PROTECTED', method)
    }
    t.equal((await post(app, '/mfa/deactivate/', { method: 'second_app', code: await totp(user.second.secret, clock.now()) }, user.access)).status, 200)
    t.equal((await post(app, '/mfa/delete/', { method: 'second_app', code: '000000' }, user.access)).status, 204)
  })

  t.test('preventDeletePrimaryMethod: the primary is a 403 AUTH_KIT_PRIMARY_METHOD_PROTECTED before its code is checked', async (t) => {
    const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, preventDeletePrimaryMethod: true, ...quick } })
    t.teardown(() => app.close())
    const user = await userWithTwo(app, clock)
    const wrong = await post(app, '/mfa/delete/', { method: 'app', code: '000000' }, user.access)
    expectError(t, wrong, 403, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED')
    const right = await post(app, '/mfa/delete/', { method: 'app', code: user.backupCodes[0] }, user.access)
    t.equal(right.body.code, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED')
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 10, 'the code was not looked at')
    const other = await post(app, '/mfa/delete/', { method: 'second_app', code: await totp(user.second.secret, clock.now()) }, user.access)
    t.equal(other.status, 204, 'a method that is not primary can go')
  })

  t.test('with both, active-protected comes before primary-protected', async (t) => {
    const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, preventDeleteActiveMethod: true, preventDeletePrimaryMethod: true, ...quick } })
    t.teardown(() => app.close())
    const user = await userWithApp(app, clock)
    const res = await post(app, '/mfa/delete/', { method: 'app', code: '000000' }, user.access)
    expectError(t, res, 403, 'AUTH_KIT_ACTIVE_METHOD_PROTECTED')
  })

  t.test('deleteActiveMethodRequireCode off: no code is needed, nor checked', async (t) => {
    const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, deleteActiveMethodRequireCode: false, ...quick } })
    t.teardown(() => app.close())
    const user = await userWithTwo(app, clock)
    t.equal((await post(app, '/mfa/delete/', { method: 'second_app' }, user.access)).status, 204)
    t.equal((await post(app, '/mfa/delete/', { method: 'app', code: '000000' }, user.access)).status, 204)
    t.equal((await post(app, '/login/', { username: user.username, password: user.password })).body.mfa_enabled, false)
  })
})

t.test('POST /mfa/backup-codes/', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers } })
  t.teardown(() => app.close())

  t.test('new codes replace the old ones', async (t) => {
    const user = await userWithApp(app, clock)
    t.equal(await verifies(app, user, user.backupCodes[0]), 200)
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 9)
    const res = await post(app, '/mfa/backup-codes/', { method: 'app', code: await totp(user.secret, clock.now()) }, user.access)
    t.equal(res.status, 200)
    t.same(Object.keys(res.body), ['backup_codes'])
    t.equal(res.body.backup_codes.length, 10)
    for (const code of res.body.backup_codes) t.match(code, new RegExp(`^${CROCKFORD_GROUP}{4}(-${CROCKFORD_GROUP}{4}){3}$`))
    t.match(res.headers['cache-control'], /no-store/)
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 10)
    t.equal(await verifies(app, user, user.backupCodes[1]), 401, 'an old code stops working')
    t.equal(await verifies(app, user, res.body.backup_codes[0]), 200, 'a new code works')
  })

  t.test('a backup code of the method is accepted as the code', async (t) => {
    const user = await userWithApp(app, clock)
    const res = await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[9] }, user.access)
    t.equal(res.status, 200)
  })

  t.test('a code of another method is a 403 AUTH_KIT_INVALID_CODE', async (t) => {
    const user = await userWithTwo(app, clock)
    for (const code of [await totp(user.second.secret, clock.now()), user.second.backupCodes[0], '000000']) {
      const res = await post(app, '/mfa/backup-codes/', { method: 'app', code }, user.access)
      expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE')
    }
    t.equal(await verifies(app, user, user.backupCodes[0]), 200, 'the old codes still work')
  })

  t.test('a method that is not active is a 404 AUTH_KIT_METHOD_NOT_FOUND', async (t) => {
    const user = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    const res = await post(app, '/mfa/backup-codes/', { method: 'app', code: created.body.backup_codes[0] }, user.access)
    expectError(t, res, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
  })
})

t.test('backup codes at login', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now })
  t.teardown(() => app.close())

  t.test('input ignores case, spaces and dashes', async (t) => {
    const user = await userWithApp(app, clock)
    const [a, b, c] = user.backupCodes
    t.equal(await verifies(app, user, a.toLowerCase()), 200, 'lower case')
    t.equal(await verifies(app, user, b.replace(/-/g, '')), 200, 'no dashes')
    t.equal(await verifies(app, user, ` ${c.replace(/-/g, ' ').toLowerCase()} `), 200, 'spaces')
  })

  t.test('each code works once and backup_codes_remaining goes down', async (t) => {
    const user = await userWithApp(app, clock)
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 10)
    t.equal(await verifies(app, user, user.backupCodes[4]), 200)
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 9)
    const again = await startLogin(app, user)
    const res = await post(app, '/login/verify/', { ephemeral_token: again.ephemeral_token, code: user.backupCodes[4] })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_CODE')
    t.equal(await verifies(app, user, user.backupCodes[4].toLowerCase()), 401, 'in any spelling')
    t.equal(await verifies(app, user, user.backupCodes[5]), 200)
    t.equal((await methodsOf(app, user.access)).app.backup_codes_remaining, 8)
  })

  t.test('a used backup code is refused on the method routes too', async (t) => {
    const user = await userWithApp(app, clock)
    t.equal(await verifies(app, user, user.backupCodes[0]), 200)
    const res = await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[0] }, user.access)
    expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE')
  })
})

t.test('a TOTP step accepted once is refused on every other route and at login', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, ...quick } })
  t.teardown(() => app.close())
  const user = await userWithApp(app, clock)
  // second_app is confirmed with code C; the clock stays within C's step.
  const created = await post(app, '/mfa/', { method: 'second_app' }, user.access)
  const secondSecret = secretOf(created.body.setup_data.qr_link)
  const code = await totp(secondSecret, clock.now())
  t.equal((await post(app, '/mfa/confirm/', { method: 'second_app', code }, user.access)).status, 200)

  for (const [url, body] of [
    ['/mfa/deactivate/', { method: 'second_app', code }],
    ['/mfa/backup-codes/', { method: 'second_app', code }],
    ['/mfa/delete/', { method: 'second_app', code }],
  ] as const) {
    const res = await post(app, url, body, user.access)
    expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE', url)
  }
  t.equal((await post(app, '/mfa/primary/', { method: 'app', primary_code: 'x' }, user.access)).status, 403)
  // Make second_app the primary with app's code, then try C as the current primary's code.
  t.equal((await post(app, '/mfa/primary/', { method: 'second_app', primary_code: await totp(user.secret, clock.now()) }, user.access)).status, 200)
  const primary = await post(app, '/mfa/primary/', { method: 'app', primary_code: code }, user.access)
  expectError(t, primary, 403, 'AUTH_KIT_INVALID_CODE', '/mfa/primary/')

  const step1 = await startLogin(app, user)
  t.equal(step1.method, 'second_app')
  const login = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code })
  expectError(t, login, 401, 'AUTH_KIT_INVALID_CODE', 'login')

  clock.advance(30)
  const next = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(secondSecret, clock.now()) })
  t.equal(next.status, 200, 'the next step works')
  const again = await startLogin(app, user)
  const replay = await post(app, '/login/verify/', { ephemeral_token: again.ephemeral_token, code: await totp(secondSecret, clock.now()) })
  t.equal(replay.status, 401, 'a step accepted at login is not accepted again at login')
  const route = await post(app, '/mfa/backup-codes/', { method: 'second_app', code: await totp(secondSecret, clock.now()) }, user.access)
  t.equal(route.status, 403, 'nor on a method route')
})

t.test('mfa.totpValidWindow', async (t) => {
  const clock = manualClock()

  async function confirmWithOffset (app: FastifyInstance, seconds: number): Promise<number> {
    const user = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    const code = await totp(secretOf(created.body.setup_data.qr_link), clock.now() + seconds * 1000)
    return (await post(app, '/mfa/confirm/', { method: 'app', code }, user.access)).status
  }

  t.test('the default of 1 accepts one step either side of now and no further', async (t) => {
    const app = await buildApp({ ...base, now: clock.now, mfa: quick })
    t.teardown(() => app.close())
    t.equal(await confirmWithOffset(app, 0), 200)
    t.equal(await confirmWithOffset(app, -30), 200)
    t.equal(await confirmWithOffset(app, 30), 200)
    t.equal(await confirmWithOffset(app, -60), 403)
    t.equal(await confirmWithOffset(app, 60), 403)
  })

  t.test('0 accepts only the step of now', async (t) => {
    const app = await buildApp({ ...base, now: clock.now, mfa: { totpValidWindow: 0, ...quick } })
    t.teardown(() => app.close())
    t.equal(await confirmWithOffset(app, 0), 200)
    t.equal(await confirmWithOffset(app, -30), 403)
    t.equal(await confirmWithOffset(app, 30), 403)
  })

  t.test('2 accepts two steps either side', async (t) => {
    const app = await buildApp({ ...base, now: clock.now, mfa: { totpValidWindow: 2, ...quick } })
    t.teardown(() => app.close())
    t.equal(await confirmWithOffset(app, -60), 200)
    t.equal(await confirmWithOffset(app, 60), 200)
    t.equal(await confirmWithOffset(app, -90), 403)
  })
})

t.test('mfa.totpInterval sets the step length, in the link and in the check', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { totpInterval: 60, totpValidWindow: 0, ...quick } })
  t.teardown(() => app.close())
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  const link = new URL(created.body.setup_data.qr_link)
  t.equal(link.searchParams.get('period'), '60')
  const secret = secretOf(link.href)
  // A 30-second code of the step before now's 60-second step is not a code here.
  const thirtySecondCode = await totp(secret, clock.now() - 30_000, 30)
  const sixtySecondCode = await totp(secret, clock.now(), 60)
  if (thirtySecondCode !== sixtySecondCode) {
    t.equal((await post(app, '/mfa/confirm/', { method: 'app', code: thirtySecondCode }, user.access)).status, 403)
  }
  t.equal((await post(app, '/mfa/confirm/', { method: 'app', code: sixtySecondCode }, user.access)).status, 200)
  // 45 seconds on, still the same 60-second step: a login needs the next step.
  clock.advance(60)
  const step1 = await startLogin(app, user)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(secret, clock.now(), 60) })).status, 200)
})

t.test('routes for every method', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ ...base, now: clock.now, mfa: { handlers, ...quick } })
  t.teardown(() => app.close())

  t.test('send for the app method is a 400 AUTH_KIT_METHOD_NOT_DISPATCHABLE, whether or not the user has it', async (t) => {
    const fresh = await newUser(app)
    const without = await post(app, '/mfa/send/', { method: 'app' }, fresh.access)
    expectError(t, without, 400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE')
    const user = await userWithApp(app, clock)
    const withIt = await post(app, '/mfa/send/', { method: 'app' }, user.access)
    expectError(t, withIt, 400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE')
  })

  t.test('an unknown method name is a 400 FST_ERR_VALIDATION on every method route', async (t) => {
    const user = await newUser(app)
    for (const url of ['/mfa/', '/mfa/confirm/', '/mfa/primary/', '/mfa/deactivate/', '/mfa/delete/', '/mfa/send/', '/mfa/backup-codes/']) {
      const res = await post(app, url, { method: 'carrier_pigeon', code: '123456', primary_code: '123456' }, user.access)
      expectError(t, res, 400, 'FST_ERR_VALIDATION', url)
    }
  })

  t.test('every method route needs auth, with and without its trailing slash', async (t) => {
    for (const url of ['/mfa/', '/mfa/confirm/', '/mfa/primary/', '/mfa/deactivate/', '/mfa/delete/', '/mfa/send/', '/mfa/backup-codes/']) {
      for (const path of [url, url.slice(0, -1)]) {
        const res = await post(app, path, { method: 'app', code: '123456', primary_code: '123456' })
        expectError(t, res, 401, 'AUTH_KIT_UNAUTHORIZED', path)
      }
    }
  })

  t.test('the method flow works on the paths without a trailing slash', async (t) => {
    const user = await newUser(app)
    const created = await post(app, '/mfa', { method: 'app' }, user.access)
    t.equal(created.status, 201)
    const secret = secretOf(created.body.setup_data.qr_link)
    t.equal((await post(app, '/mfa/confirm', { method: 'app', code: await totp(secret, clock.now()) }, user.access)).status, 200)
    clock.advance(30)
    // With a method active, the other routes want a token carrying mfa (SPEC section 3, "Methods").
    const up = await post(app, '/login/step-up', { code: await totp(secret, clock.now()) }, user.access)
    t.equal(up.status, 200)
    const access = up.body.access as string
    clock.advance(30)
    t.equal((await post(app, '/mfa/primary', { method: 'app', primary_code: created.body.backup_codes[0] }, access)).status, 200)
    t.equal((await post(app, '/mfa/backup-codes', { method: 'app', code: await totp(secret, clock.now()) }, access)).status, 200)
    t.equal((await post(app, '/mfa/deactivate', { method: 'app', code: '000000' }, access)).body.code, 'AUTH_KIT_PRIMARY_METHOD_PROTECTED')
    clock.advance(30)
    t.equal((await post(app, '/mfa/delete', { method: 'app', code: await totp(secret, clock.now()) }, access)).status, 204)
  })
})

t.test('authentication is checked before the body: an anonymous caller gets 401 whatever it sends', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  for (const url of ['/mfa/', '/mfa/confirm/', '/mfa/primary/', '/mfa/deactivate/', '/mfa/delete/', '/mfa/send/', '/mfa/backup-codes/', '/logout/']) {
    for (const body of [{}, { method: 'nope' }, { method: 'app', code: 123 }]) {
      const res = await post(app, url, body)
      expectError(t, res, 401, 'AUTH_KIT_UNAUTHORIZED', `${url} ${JSON.stringify(body)}`)
    }
  }
})

t.test('racing deactivations with different backup codes: one deactivates, the others fail and spend no code', async (t) => {
  const { app, clock } = await clockedApp(t, { mfa: { handlers: [AppHandler, SecondAppHandler] } /* the slow hash widens the race window */ })
  const user = await newUser(app)
  const { access } = await enableTotp(app, user.access, clock)
  clock.advance(30)
  const second = await enableTotp(app, access, clock, SecondAppHandler.NAME)
  const answers = await Promise.all(second.backupCodes.slice(0, 4).map(async (code) => post(app, '/mfa/deactivate/', { method: SecondAppHandler.NAME, code }, access)))
  const statuses = answers.map((a) => a.status).sort()
  t.same(statuses, [200, 404, 404, 404], 'one deactivation; the rest find the method inactive')
  const listed = (await get(app, '/mfa/', access)).body.find((m: { name: string }) => m.name === SecondAppHandler.NAME)
  t.equal(listed.is_active, false)
  t.equal(listed.backup_codes_remaining, second.backupCodes.length - 1, 'only the winning request spent its code')
})

import t from 'tap'
import { AppHandler } from '../src/index.js'
import { openDatabase } from '../src/db/connect.js'
import { buildApp, get, manualClock, newUser, post, secretOf, totp, expectError } from './helpers/app.js'
import { onEveryDialect } from './helpers/dialects.js'
import { recordingSmsHandler } from './helpers/custom-handlers.js'
import { startLogin } from './helpers/flows.js'

// One flow, the same helpers and the same assertions, on every database the
// environment has: SQLite always, PostgreSQL and MySQL/MariaDB when reachable.

/** A method that sends codes, recorded where the test reads them (SMS, say). */
const outbox = recordingSmsHandler({ name: 'outbox' })

const mfa = { handlers: [AppHandler, outbox.Handler], maxAttemptsPerToken: 3, lockoutThreshold: 6, lockoutDuration: 900 }

await onEveryDialect(t, undefined, async (t, scratch) => {
  const clock = manualClock()
  // Two apps on one database stand for two processes of one service.
  const app = await buildApp({ database: scratch.url, now: clock.now, mfa })
  const other = await buildApp({ database: scratch.url, now: clock.now, mfa })
  t.teardown(async () => {
    await app.close()
    await other.close()
  })

  const user = await newUser(app)
  let secret = ''
  let backupCodes: string[] = []
  /** user's session stepped up once the app method is active: the method routes want mfa in amr (SPEC section 3, "Methods"). */
  let mfaAccess = ''
  const methodsOf = async (access: string) => Object.fromEntries(((await get(app, '/mfa/', access)).body as any[]).map((m) => [m.name, m]))

  t.test('registration and one-step login', async (t) => {
    const me = await get(app, '/user/', user.access)
    t.equal(me.status, 200)
    t.same(me.body, { user: { id: user.id, username: user.username, email: `${user.username}@example.com` } })
    t.type(me.body.user.id, 'string')
    const again = await post(app, '/registration/', { username: user.username.toUpperCase(), email: 'other@example.com', password: 'another password' })
    expectError(t, again, 409, 'AUTH_KIT_USERNAME_TAKEN')
    const wrong = await post(app, '/login/', { username: user.username, password: 'wrong password' })
    expectError(t, wrong, 401, 'AUTH_KIT_INVALID_CREDENTIALS')
  })

  t.test('the app method is created inactive, then confirmed as primary', async (t) => {
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    t.equal(created.status, 201)
    t.equal(created.body.method, 'app')
    t.equal(created.body.backup_codes.length, 10)
    for (const code of created.body.backup_codes) t.match(code, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/)
    secret = secretOf(created.body.setup_data.qr_link)
    backupCodes = created.body.backup_codes
    t.equal((await methodsOf(user.access)).app.is_active, false)

    const confirm = await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, user.access)
    t.equal(confirm.status, 200)
    const methods = await methodsOf(user.access)
    t.match(methods.app, { is_active: true, is_primary: true, is_setup: true, requires_dispatch: false, backup_codes_remaining: 10 })
    t.match(methods.outbox, { is_active: false, is_primary: false, is_setup: false, requires_dispatch: true, backup_codes_remaining: 0 })
    clock.advance(30)
    const up = await post(app, '/login/step-up/', { code: await totp(secret, clock.now()) }, user.access)
    t.equal(up.status, 200)
    mfaAccess = up.body.access
    const twice = await post(app, '/mfa/', { method: 'app' }, mfaAccess)
    expectError(t, twice, 409, 'AUTH_KIT_METHOD_EXISTS')
    clock.advance(30)
  })

  t.test('two-step login with a TOTP code; a used step never works again', async (t) => {
    const step1 = await startLogin(app, user)
    t.same(step1, { mfa_enabled: true, ephemeral_token: step1.ephemeral_token, method: 'app', methods: ['app'] })
    const code = await totp(secret, clock.now())
    const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code })
    t.equal(step2.status, 200)
    t.same(Object.keys(step2.body).sort(), ['access', 'access_expiration', 'refresh', 'refresh_expiration', 'user'])
    t.equal(step2.body.user.id, user.id)
    t.equal(new Date(step2.body.access_expiration).toISOString(), step2.body.access_expiration)
    const used = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code })
    expectError(t, used, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'the ephemeral token works once')

    const replay = await post(other, '/login/verify/', { ephemeral_token: (await startLogin(other, user)).ephemeral_token, code })
    expectError(t, replay, 401, 'AUTH_KIT_INVALID_CODE', 'the same step is refused, also by another process')
    clock.advance(30)
    const next = await post(app, '/login/verify/', { ephemeral_token: (await startLogin(app, user)).ephemeral_token, code: await totp(secret, clock.now()) })
    t.equal(next.status, 200, 'the next step works')
  })

  t.test('a backup code works once, even with parallel requests', async (t) => {
    const typed = backupCodes[0].toLowerCase().replace(/-/g, ' ')
    const first = await post(app, '/login/verify/', { ephemeral_token: (await startLogin(app, user)).ephemeral_token, code: typed })
    t.equal(first.status, 200, 'case, spaces and dashes do not matter')
    const again = await post(app, '/login/verify/', { ephemeral_token: (await startLogin(app, user)).ephemeral_token, code: backupCodes[0] })
    expectError(t, again, 401, 'AUTH_KIT_INVALID_CODE')

    const attempts = await Promise.all([app, other, app, other].map((on) => startLogin(on, user)))
    const results = await Promise.all(attempts.map((a, i) => post(i % 2 === 0 ? app : other, '/login/verify/', { ephemeral_token: a.ephemeral_token, code: backupCodes[1] })))
    t.equal(results.filter((r) => r.status === 200).length, 1, 'exactly one of four parallel verifies succeeds')
    t.same(results.filter((r) => r.status !== 200).map((r) => r.body.code), ['AUTH_KIT_INVALID_CODE', 'AUTH_KIT_INVALID_CODE', 'AUTH_KIT_INVALID_CODE'])
    t.equal((await methodsOf(user.access)).app.backup_codes_remaining, 8)

    clock.advance(30)
    const right = await post(app, '/login/verify/', { ephemeral_token: (await startLogin(app, user)).ephemeral_token, code: await totp(secret, clock.now()) })
    t.equal(right.status, 200, 'a right code (resetting the failure count)')
  })

  t.test('refresh tokens rotate: each works once', async (t) => {
    const first = await post(app, '/token/refresh/', { refresh: user.refresh })
    t.equal(first.status, 200)
    t.same(Object.keys(first.body).sort(), ['access', 'access_expiration', 'refresh', 'refresh_expiration'])
    t.not(first.body.refresh, user.refresh)
    const second = await post(other, '/token/refresh/', { refresh: first.body.refresh })
    t.equal(second.status, 200, 'the new one works, in another process too')
    const old = await post(app, '/token/refresh/', { refresh: user.refresh })
    expectError(t, old, 401, 'AUTH_KIT_INVALID_REFRESH_TOKEN')
    const me = await get(app, '/user/', second.body.access)
    t.equal(me.status, 200)
    t.equal(me.body.user.id, user.id)
  })

  t.test('deleting the primary promotes the other active method', async (t) => {
    const created = await post(app, '/mfa/', { method: 'outbox' }, mfaAccess)
    t.equal(created.status, 201)
    t.ok(outbox.count(user.id) > 0, 'a code was sent at create')
    const confirm = await post(app, '/mfa/confirm/', { method: 'outbox', code: outbox.last(user.id) }, mfaAccess)
    t.equal(confirm.status, 200)
    let methods = await methodsOf(user.access)
    t.match(methods.app, { is_active: true, is_primary: true })
    t.match(methods.outbox, { is_active: true, is_primary: false })

    clock.advance(30)
    const deleted = await post(app, '/mfa/delete/', { method: 'app', code: await totp(secret, clock.now()) }, mfaAccess)
    t.equal(deleted.status, 204)
    methods = await methodsOf(user.access)
    t.match(methods.app, { is_setup: false, is_active: false, is_primary: false })
    t.match(methods.outbox, { is_active: true, is_primary: true })

    clock.advance(31) // past the resend cooldown: step 1 sends a new code
    const step1 = await startLogin(app, user)
    t.same(step1.methods, ['outbox'])
    t.equal(step1.method, 'outbox', 'MFA stays on: the other method is primary')
    const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: outbox.last(user.id) })
    t.equal(step2.status, 200)
  })

  t.test('wrong codes across attempts and processes lock the user', async (t) => {
    clock.advance(31)
    const a = await startLogin(app, user) // sends a code: the right one from here on
    const right = outbox.last(user.id)
    const wrong = right === '000000' ? '111111' : '000000'
    for (let i = 1; i <= 3; i++) {
      const res = await post(app, '/login/verify/', { ephemeral_token: a.ephemeral_token, code: wrong })
      t.equal(res.body.code, 'AUTH_KIT_INVALID_CODE', `wrong code ${i} on attempt A`)
    }
    const dead = await post(app, '/login/verify/', { ephemeral_token: a.ephemeral_token, code: right })
    expectError(t, dead, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'maxAttemptsPerToken wrong codes kill the attempt')

    const b = await startLogin(other, user) // within the cooldown: nothing new sent, the last code still works
    t.equal(outbox.last(user.id), right)
    for (let i = 4; i <= 6; i++) {
      const res = await post(other, '/login/verify/', { ephemeral_token: b.ephemeral_token, code: wrong })
      expectError(t, res, 401, 'AUTH_KIT_INVALID_CODE', `wrong code ${i}, in the other process, gets its own answer`)
    }
    const c = await startLogin(app, user)
    const locked = await post(app, '/login/verify/', { ephemeral_token: c.ephemeral_token, code: right })
    expectError(t, locked, 429, 'AUTH_KIT_TOO_MANY_ATTEMPTS', 'even the right code is refused while locked')
    t.equal(locked.headers['retry-after'], '900')

    clock.advance(901)
    const d = await startLogin(other, user) // the old code expired; a new one is sent
    const after = await post(other, '/login/verify/', { ephemeral_token: d.ephemeral_token, code: outbox.last(user.id) })
    t.equal(after.status, 200, 'the lock ends')
  })

  t.test('a Kysely instance the host passes is borrowed, and migrations use their own tables', async (t) => {
    const { db } = await openDatabase(scratch.url)
    t.teardown(() => db.destroy())
    const borrowing = await buildApp({ database: db, now: clock.now, mfa })
    const login = await post(borrowing, '/login/', { username: user.username, password: user.password })
    t.equal(login.status, 200, 'the same data, migrations already run')
    t.equal(login.body.mfa_enabled, true)
    await borrowing.close()
    const users = await db.selectFrom('auth_kit_user').select('id').execute()
    t.ok(users.length >= 1, 'the instance still works after the app closed')
    const tables = (await db.introspection.getTables()).map((table) => table.name)
    for (const table of ['auth_kit_migration', 'auth_kit_migration_lock', 'auth_kit_user', 'auth_kit_mfa_method', 'auth_kit_backup_code']) {
      t.ok(tables.includes(table), `${table} exists`)
    }
    t.notOk(tables.includes('kysely_migration'), "Kysely's default bookkeeping table is left to the host")
    t.ok(tables.every((table) => table.startsWith('auth_kit_')), `every table is prefixed (${tables.join(', ')})`)
  })
})

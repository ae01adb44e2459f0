// Attack: replaying a code or token someone saw (shoulder surfing, a proxy
// log, a phished page), or racing it in parallel before it is marked used.
// Every credential works once: a TOTP step, a sent code, a backup code, an
// ephemeral token, a refresh token — also under N parallel requests, and
// across two processes sharing one database.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { AppHandler } from '../../src/index.js'
import { manualClock, post, get, totp, expectError } from '../helpers/app.js'
import { twoInstances } from '../helpers/security.js'
import { userWithAppAndSms, loginToken, wrongCode } from '../helpers/flows.js'
import { recordingSmsHandler } from '../helpers/custom-handlers.js'

const N = 8

async function setup (t: { teardown (fn: () => unknown): void }) {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const [a, b] = await twoInstances(t, { now: clock.now, mfa: { handlers: [AppHandler, sms.Handler] } })
  const user = await userWithAppAndSms(a, clock, sms)
  return { a, b, clock, sms, user }
}

/** One login attempt per request, alternating between the two processes. */
async function attempts (apps: FastifyInstance[], user: { username: string, password: string }, n: number) {
  const out: Array<{ app: FastifyInstance, token: string }> = []
  for (let i = 0; i < n; i++) {
    const app = apps[i % apps.length]
    out.push({ app, token: await loginToken(app, user) })
  }
  return out
}

const successes = (results: Array<{ status: number }>) => results.filter((r) => r.status === 200).length

async function remaining (app: FastifyInstance, access: string, method: string): Promise<number> {
  const list = await get(app, '/mfa/', access)
  return list.body.find((m: { name: string }) => m.name === method).backup_codes_remaining
}

t.test('a TOTP step is accepted once for a method, on any route', async (t) => {
  const { a, b, clock, user } = await setup(t)
  const code = await totp(user.secret, clock.now())
  const first = await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code })
  t.equal(first.status, 200)

  const again = await post(b, '/login/verify/', { ephemeral_token: await loginToken(b, user), code })
  expectError(t, again, 401, 'AUTH_KIT_INVALID_CODE', 'the same step at another login, in another process')
  const onRoute = await post(a, '/mfa/backup-codes/', { method: 'app', code }, user.access)
  t.equal(onRoute.status, 403, 'the same step on a method route')

  // A step before the last accepted one is as spent as the step itself.
  clock.advance(30)
  const next = await totp(user.secret, clock.now())
  t.equal((await post(a, '/mfa/backup-codes/', { method: 'app', code: next }, user.access)).status, 200)
  const previous = await totp(user.secret, clock.now() - 30_000)
  t.not(previous, next)
  t.equal((await post(b, '/login/verify/', { ephemeral_token: await loginToken(b, user), code: previous })).status, 401,
    'an older step inside the window is refused once a later one was used')
})

const ALREADY_USED = 'This code, or a newer one, was already used. Wait for the next code and try again.'

t.test('a code just used is refused with the status and code of a wrong one, and a message that says it was used', async (t) => {
  const { a, clock, user } = await setup(t)
  const code = await totp(user.secret, clock.now())
  t.equal((await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code })).status, 200)

  const atLogin = await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code })
  t.same(atLogin.body, { statusCode: 401, code: 'AUTH_KIT_INVALID_CODE', error: 'Unauthorized', message: ALREADY_USED },
    'at login verify: 401 AUTH_KIT_INVALID_CODE (SPEC section 4), and the message says to wait for the next code')
  for (const [url, body] of [
    ['/mfa/backup-codes/', { method: 'app', code }],
    ['/mfa/deactivate/', { method: 'sms', code }],
    ['/mfa/primary/', { method: 'sms', primary_code: code }],
    ['/login/step-up/', { code }],
  ] as const) {
    const res = await post(a, url, body, user.access)
    t.same(res.body, { statusCode: 403, code: 'AUTH_KIT_INVALID_CODE', error: 'Forbidden', message: url === '/mfa/deactivate/' ? 'Invalid code.' : ALREADY_USED },
      url === '/mfa/deactivate/' ? `${url}: the app's code is no code of sms, so it is simply wrong` : `${url}: 403, "already used"`)
  }

  // A step older than the one accepted, still inside the window: "or a newer one".
  clock.advance(30)
  const next = await totp(user.secret, clock.now())
  t.equal((await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code: next })).status, 200)
  const older = await totp(user.secret, clock.now() - 30_000)
  t.equal((await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code: older })).body.message, ALREADY_USED,
    'a step before the accepted one is refused as used too')
})

t.test('"already used" is said only for a right code of a spent step: nothing an attacker lacks', async (t) => {
  const { a, clock, user } = await setup(t)
  const window = await Promise.all([-1, 0, 1].map(async (k) => totp(user.secret, clock.now() + k * 30_000)))
  const messages = async (code: string): Promise<string> => {
    const res = await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code })
    t.equal(res.status, 401)
    t.equal(res.body.code, 'AUTH_KIT_INVALID_CODE')
    return res.body.message
  }
  // Every refusal that is not a right code of a spent step reads the same.
  t.equal(await messages(wrongCode(...window)), 'Invalid code.', 'a wrong code')
  t.equal(await messages(await totp(user.secret, clock.now() - 10 * 60_000)), 'Invalid code.', 'a right code of a step outside the window')
  t.equal(await messages('ZZZZ-ZZZZ-ZZZZ-ZZZZ'), 'Invalid code.', 'a wrong backup code')
  // A used backup code is not a TOTP step: it reads as any wrong code.
  t.equal((await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code: user.backupCodes[0] })).status, 200)
  t.equal(await messages(user.backupCodes[0]), 'Invalid code.', 'a used backup code says nothing more')
  // The helper's step-up spent the step before now: a right code of it is "used".
  t.equal(await messages(window[0]), ALREADY_USED, 'the step the session was stepped up with')
  // The next step, not yet accepted, works: "wait for the next code" is true advice.
  t.equal((await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code: window[2] })).status, 200, 'the next step is accepted')
  t.equal(await messages(window[2]), ALREADY_USED, 'and then it is the used one')
})

t.test(`${N} parallel logins with one TOTP code across two processes: exactly one succeeds`, async (t) => {
  const { a, b, clock, user } = await setup(t)
  const list = await attempts([a, b], user, N)
  const code = await totp(user.secret, clock.now())
  const results = await Promise.all(list.map(async ({ app, token }) => post(app, '/login/verify/', { ephemeral_token: token, code })))
  t.equal(successes(results), 1)
  t.ok(results.filter((r) => r.status !== 200).every((r) => r.status === 401 && r.body.code === 'AUTH_KIT_INVALID_CODE'))
})

t.test('a sent code works once, and only the latest one sent works', async (t) => {
  const { a, b, clock, sms, user } = await setup(t)
  const token = await loginToken(a, user)
  t.equal((await post(a, '/login/change-method/', { ephemeral_token: token, new_method: 'sms' })).status, 200)
  const code = sms.last(user.id)
  t.equal((await post(a, '/login/verify/', { ephemeral_token: token, code })).status, 200)

  // Within the cooldown nothing new is sent, and the used code stays used.
  const other = await loginToken(b, user)
  t.equal((await post(b, '/login/change-method/', { ephemeral_token: other, new_method: 'sms' })).status, 200)
  t.equal(sms.last(user.id), code, 'nothing new was sent within the cooldown')
  const replay = await post(b, '/login/verify/', { ephemeral_token: other, code })
  expectError(t, replay, 401, 'AUTH_KIT_INVALID_CODE')
  t.equal((await post(a, '/mfa/backup-codes/', { method: 'sms', code }, user.access)).status, 403, 'nor on a method route')

  clock.advance(30)
  t.equal((await post(a, '/mfa/send/', { method: 'sms' }, user.access)).status, 200)
  const older = sms.last(user.id)
  clock.advance(30)
  t.equal((await post(b, '/mfa/send/', { method: 'sms' }, user.access)).status, 200)
  const latest = sms.last(user.id)
  t.not(older, latest)
  t.equal((await post(a, '/mfa/backup-codes/', { method: 'sms', code: older }, user.access)).status, 403, 'an earlier code stops working when a new one is sent')
  t.equal((await post(a, '/mfa/backup-codes/', { method: 'sms', code: latest }, user.access)).status, 200)
})

t.test(`${N} parallel logins with one sent code across two processes: exactly one succeeds`, async (t) => {
  const { a, b, sms, user } = await setup(t)
  const list = await attempts([a, b], user, N)
  for (const { app, token } of list) t.equal((await post(app, '/login/change-method/', { ephemeral_token: token, new_method: 'sms' })).status, 200)
  const code = sms.last(user.id)
  const results = await Promise.all(list.map(async ({ app, token }) => post(app, '/login/verify/', { ephemeral_token: token, code })))
  t.equal(successes(results), 1)
})

t.test(`${N} parallel logins with one backup code across two processes: exactly one succeeds`, async (t) => {
  const { a, b, user } = await setup(t)
  const list = await attempts([a, b], user, N)
  const code = user.backupCodes[3]
  const results = await Promise.all(list.map(async ({ app, token }) => post(app, '/login/verify/', { ephemeral_token: token, code })))
  t.equal(successes(results), 1)
  t.equal(await remaining(a, user.access, 'app'), 9, 'one code used up')
  const later = await post(b, '/mfa/backup-codes/', { method: 'app', code }, user.access)
  t.equal(later.status, 403, 'a used backup code never works again')
  // Typed differently, it is still the same used code.
  const sloppy = code.toLowerCase().replace(/-/g, ' ')
  t.equal((await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code: sloppy })).status, 401)
})

t.test(`${N} parallel method-route requests with one backup code: exactly one succeeds`, async (t) => {
  const { a, b, user } = await setup(t)
  const code = user.smsBackupCodes[0]
  const results = await Promise.all(Array.from({ length: N }, async (_, i) => post(i % 2 === 0 ? a : b, '/mfa/deactivate/', { method: 'sms', code }, user.access)))
  t.equal(successes(results), 1)
  t.ok(results.filter((r) => r.status !== 200).every((r) => r.status === 403 || r.status === 404))
})

t.test('an ephemeral token is good for one successful verify, also in parallel', async (t) => {
  const { a, b, user } = await setup(t)
  const token = await loginToken(a, user)
  // Five different right codes (backup codes) race on one token.
  const codes = user.backupCodes.slice(0, 5)
  const results = await Promise.all(codes.map(async (code, i) => post(i % 2 === 0 ? a : b, '/login/verify/', { ephemeral_token: token, code })))
  t.equal(successes(results), 1)
  t.ok(results.filter((r) => r.status !== 200).every((r) => r.status === 401 && r.body.code === 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN'))
  t.equal(await remaining(a, user.access, 'app'), 9, 'the losing requests used up no backup code (rule 8)')
  const after = await post(b, '/login/verify/', { ephemeral_token: token, code: user.backupCodes[6] })
  expectError(t, after, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'a used token stays used')
})

t.test('a refresh token rotates once, also in parallel; a spent one revokes its family', async (t) => {
  const { a, b, clock, user } = await setup(t)
  const login = await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code: user.backupCodes[0] })
  t.equal(login.status, 200)
  const results = await Promise.all(Array.from({ length: N }, async (_, i) => post(i % 2 === 0 ? a : b, '/token/refresh/', { refresh: login.body.refresh })))
  t.equal(successes(results), 1)
  t.ok(results.filter((r) => r.status !== 200).every((r) => r.status === 401 && r.body.code === 'AUTH_KIT_INVALID_REFRESH_TOKEN'))

  // Sequential reuse: the thief and the owner both lose the chain.
  const second = await post(a, '/login/verify/', { ephemeral_token: await loginToken(a, user), code: user.backupCodes[1] })
  const rotated = await post(b, '/token/refresh/', { refresh: second.body.refresh })
  t.equal(rotated.status, 200)
  // 0.2 (SPEC section 2, tokens.refreshReuseGrace; section 12): within the grace a spent token is
  // a second tab and revokes nothing; the thief comes later.
  clock.advance(11)
  t.equal((await post(a, '/token/refresh/', { refresh: second.body.refresh })).status, 401, 'the spent token is refused')
  t.equal((await post(a, '/token/refresh/', { refresh: rotated.body.refresh })).status, 401, 'and its successor was revoked with it')
})

// Attack: an attacker who knows the password guesses second-factor codes.
// Rules 2 and 5: a login attempt dies after maxAttemptsPerToken wrong codes; a
// user is locked after lockoutThreshold consecutive wrong codes anywhere.
import t from 'tap'
import { AppHandler } from '../../src/index.js'
import { buildApp, manualClock, post, get, totp, expectError } from '../helpers/app.js'
import { totpWindow, eventLog, twoInstances } from '../helpers/security.js'
import { userWithAppAndSms, loginToken, wrongCode } from '../helpers/flows.js'
import { recordingSmsHandler } from '../helpers/custom-handlers.js'

const NOT_A_BACKUP_CODE = 'ABCD-EFGH-JKMN-PQRS'

async function setup (t: { teardown (fn: () => unknown): void }, options: { mfa?: Record<string, unknown>, tokens?: Record<string, number> } = {}) {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const log = eventLog()
  const app = await buildApp({ ...options, now: clock.now, onEvent: log.onEvent, mfa: { handlers: [AppHandler, sms.Handler], ...options.mfa } })
  t.teardown(() => app.close())
  const user = await userWithAppAndSms(app, clock, sms)
  return { app, clock, sms, log, user }
}

t.test('wrong codes count across login attempts, backup codes, methods and routes, and the tenth locks the user', async (t) => {
  const { app, clock, sms, log, user } = await setup(t)
  const wrong = wrongCode(...await totpWindow(user.secret, clock.now()))

  const first = await loginToken(app, user)
  for (let i = 0; i < 3; i++) {
    const res = await post(app, '/login/verify/', { ephemeral_token: first, code: wrong })
    expectError(t, res, 401, 'AUTH_KIT_INVALID_CODE')
  }
  const second = await loginToken(app, user)
  for (let i = 0; i < 2; i++) {
    const res = await post(app, '/login/verify/', { ephemeral_token: second, code: NOT_A_BACKUP_CODE })
    t.equal(res.status, 401)
  }
  for (const [url, body] of [
    ['/mfa/deactivate/', { method: 'sms', code: wrong }],
    ['/mfa/deactivate/', { method: 'sms', code: NOT_A_BACKUP_CODE }],
    ['/mfa/backup-codes/', { method: 'app', code: wrong }],
    ['/mfa/delete/', { method: 'sms', code: wrong }],
  ] as const) {
    const res = await post(app, url, body, user.access)
    expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE', `${url} answers a wrong code with 403`)
  }
  t.equal(log.ofType('user_locked').length, 0, 'nine wrong codes do not lock')

  // The tenth wrong code starts the lock and still gets its own answer.
  const tenth = await post(app, '/mfa/primary/', { method: 'sms', primary_code: wrong }, user.access)
  expectError(t, tenth, 403, 'AUTH_KIT_INVALID_CODE')
  t.equal(log.ofType('user_locked').length, 1)
  t.match(log.ofType('user_locked')[0], { userId: user.id })

  // Every code, right ones included, on every route, is now refused with 429.
  const before = (await get(app, '/mfa/', user.access)).body
  const rightTotp = await totp(user.secret, clock.now())
  const attempts = [
    await post(app, '/login/verify/', { ephemeral_token: second, code: rightTotp }),
    await post(app, '/login/verify/', { ephemeral_token: second, code: user.backupCodes[0] }),
    await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[1] }, user.access),
    await post(app, '/mfa/deactivate/', { method: 'sms', code: user.smsBackupCodes[0] }, user.access),
    await post(app, '/mfa/primary/', { method: 'sms', primary_code: rightTotp }, user.access),
  ]
  for (const res of attempts) {
    expectError(t, res, 429, 'AUTH_KIT_TOO_MANY_ATTEMPTS')
    t.equal(res.headers['retry-after'], '900', 'Retry-After is the lock\'s remaining time')
    t.equal(res.body.message, 'Too many wrong codes. Try again in 15 minutes.', 'the message says it in words')
  }
  clock.advance(100)
  const later = await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[1] }, user.access)
  t.equal(later.status, 429)
  t.equal(later.headers['retry-after'], '800')
  t.equal(later.body.message, 'Too many wrong codes. Try again in 14 minutes.', '800 seconds, rounded up to whole minutes')
  t.same((await get(app, '/mfa/', user.access)).body, before, 'nothing was consumed or changed during the lock')
  t.equal(log.ofType('user_locked').length, 1, 'refusals during the lock do not lock again')

  // Step 1 goes on as usual while locked; the lock shows at step 2.
  const during = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(during.status, 200)
  t.equal(during.body.mfa_enabled, true)
  const duringVerify = await post(app, '/login/verify/', { ephemeral_token: during.body.ephemeral_token, code: user.backupCodes[2] })
  t.equal(duringVerify.status, 429)

  // After the lock the codes refused during it still work.
  clock.advance(800)
  const token = await loginToken(app, user)
  const after = await post(app, '/login/verify/', { ephemeral_token: token, code: user.backupCodes[0] })
  t.equal(after.status, 200, 'the backup code refused during the lock was not used up')
  t.ok(after.body.access)
  t.ok(sms.texts.length > 0)
})

t.test('each further lock without a right code doubles, up to a day; a right code resets the doubling', async (t) => {
  // The clock moves over three days: the session (0.2: one refresh chain, whose access tokens end
  // with it, SPEC section 9 "Sessions") must outlive that as the access token does.
  const { app, clock, user, log } = await setup(t, { mfa: { lockoutDuration: 40000 }, tokens: { accessTokenExpiry: 10 * 86400, refreshTokenExpiry: 10 * 86400 } })
  const lockWith = async (): Promise<string | undefined> => {
    const wrong = wrongCode(...await totpWindow(user.secret, clock.now()))
    for (let i = 0; i < 10; i++) {
      const res = await post(app, '/mfa/backup-codes/', { method: 'app', code: wrong }, user.access)
      t.equal(res.status, 403)
    }
    const res = await post(app, '/mfa/backup-codes/', { method: 'app', code: wrong }, user.access)
    t.equal(res.status, 429)
    return res.headers['retry-after'] as string | undefined
  }
  t.equal(await lockWith(), '40000', 'first lock: lockoutDuration')
  clock.advance(40000)
  t.equal(await lockWith(), '80000', 'second lock: doubled')
  clock.advance(80000)
  t.equal(await lockWith(), '86400', 'third lock: capped at a day')
  clock.advance(86400)
  t.equal(await lockWith(), '86400', 'still a day')
  clock.advance(86400)
  const right = await post(app, '/mfa/backup-codes/', { method: 'app', code: await totp(user.secret, clock.now()) }, user.access)
  t.equal(right.status, 200, 'a right code after the lock works')
  t.equal(await lockWith(), '40000', 'after a right code the next lock is the first again')
  t.equal(log.ofType('user_locked').length, 5)
})

t.test('a right code resets the count of consecutive wrong codes', async (t) => {
  const { app, clock, user, log } = await setup(t)
  for (let round = 0; round < 3; round++) {
    const wrong = wrongCode(...await totpWindow(user.secret, clock.now()))
    for (let i = 0; i < 9; i++) t.equal((await post(app, '/mfa/backup-codes/', { method: 'app', code: wrong }, user.access)).status, 403)
    const right = await post(app, '/mfa/backup-codes/', { method: 'app', code: await totp(user.secret, clock.now()) }, user.access)
    t.equal(right.status, 200, `round ${round}: the right code after nine wrong ones works`)
    clock.advance(30)
  }
  t.equal(log.ofType('user_locked').length, 0)
})

t.test('a login attempt dies after maxAttemptsPerToken wrong codes; change-method and resend neither revive nor extend it', async (t) => {
  const { app, clock, sms, user } = await setup(t)
  const wrong = wrongCode(...await totpWindow(user.secret, clock.now()))
  const token = await loginToken(app, user)
  for (let i = 0; i < 4; i++) t.equal((await post(app, '/login/verify/', { ephemeral_token: token, code: wrong })).status, 401)
  const changed = await post(app, '/login/change-method/', { ephemeral_token: token, new_method: 'sms' })
  t.equal(changed.status, 200)
  const resent = await post(app, '/login/resend/', { ephemeral_token: token })
  t.equal(resent.status, 429, 'within the cooldown resend sends nothing new')
  const fifth = await post(app, '/login/verify/', { ephemeral_token: token, code: wrongCode(sms.last(user.id)) })
  expectError(t, fifth, 401, 'AUTH_KIT_INVALID_CODE', 'the wrong code that kills the attempt still says the code was wrong')
  const dead = await post(app, '/login/verify/', { ephemeral_token: token, code: sms.last(user.id) })
  expectError(t, dead, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'even the right code cannot use a dead attempt')

  // Expiry counts from step 1, whatever happened since.
  const fresh = await loginToken(app, user)
  clock.advance(560)
  t.equal((await post(app, '/login/change-method/', { ephemeral_token: fresh, new_method: 'sms' })).status, 200)
  clock.advance(30)
  t.equal((await post(app, '/login/resend/', { ephemeral_token: fresh })).status, 200)
  clock.advance(11)
  const expired = await post(app, '/login/verify/', { ephemeral_token: fresh, code: sms.last(user.id) })
  expectError(t, expired, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
})

t.test('parallel guesses across two processes sharing one database test no more codes than the threshold', async (t) => {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const log = eventLog()
  const [a, b] = await twoInstances(t, { now: clock.now, onEvent: log.onEvent, mfa: { handlers: [AppHandler, sms.Handler] } })
  const user = await userWithAppAndSms(a, clock, sms)
  const wrong = wrongCode(...await totpWindow(user.secret, clock.now()))
  const tokens: Array<{ app: typeof a, token: string }> = []
  for (let i = 0; i < 30; i++) {
    const app = i % 2 === 0 ? a : b
    tokens.push({ app, token: await loginToken(app, user) })
  }
  // 30 wrong codes at once, one per login attempt, so only the user's limit applies.
  const results = await Promise.all(tokens.map(async ({ app, token }) => post(app, '/login/verify/', { ephemeral_token: token, code: wrong })))
  const examined = results.filter((r) => r.status === 401 && r.body.code === 'AUTH_KIT_INVALID_CODE').length
  const refused = results.filter((r) => r.status === 429 && r.body.code === 'AUTH_KIT_TOO_MANY_ATTEMPTS')
  t.equal(examined, 10, 'exactly lockoutThreshold codes were looked at')
  t.equal(refused.length, 20, 'every other guess was refused unseen')
  t.ok(refused.every((r) => Number(r.headers['retry-after']) >= 1), 'every 429 says how long to wait')
  t.equal(log.ofType('user_locked').length, 1, 'one lock, whichever process saw the tenth wrong code')

  // Both processes now refuse the right code.
  for (const app of [a, b]) {
    const token = await loginToken(app, user)
    const res = await post(app, '/login/verify/', { ephemeral_token: token, code: await totp(user.secret, clock.now()) })
    t.equal(res.status, 429)
    t.equal(res.headers['retry-after'], '900')
  }
  clock.advance(900)
  const token = await loginToken(b, user)
  const ok = await post(b, '/login/verify/', { ephemeral_token: token, code: await totp(user.secret, clock.now()) })
  t.equal(ok.status, 200, 'after the lock the right code works in the other process')
})

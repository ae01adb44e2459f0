// Attack: going unnoticed (the original has no audit trail), or breaking and
// stalling logins through the audit hook. SPEC section 6: every security
// event reaches onEvent at the moment it happens, with {type, userId, method?,
// ip, at} and no secret; a failing or slow listener never touches the answer.
import t, { type Test } from 'tap'
import { AppHandler, type AuthKitEvent } from '../../src/index.js'
import { buildApp, manualClock, post, newUser, secretOf, totp, expectError } from '../helpers/app.js'
import { logCapture, totpWindow } from '../helpers/security.js'
import { wrongCode } from '../helpers/flows.js'
import { recordingSmsHandler } from '../helpers/custom-handlers.js'

// The 13 types of 0.1 and step_up_succeeded of 0.2, which a session that changes methods now goes through
// (SPEC sections 6 and 9); the device, session, throttling and admin types are not part of this walk.
const ALL_TYPES = [
  'login_succeeded', 'login_failed', 'mfa_challenge_started', 'mfa_verified', 'mfa_failed', 'user_locked',
  'method_created', 'method_confirmed', 'primary_changed', 'method_deactivated', 'method_deleted',
  'backup_code_used', 'backup_codes_regenerated', 'step_up_succeeded',
]

t.test('each of the 14 event types of a session\'s life fires at its moment, with who, what, where and when, and no secret', async (t) => {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const events: AuthKitEvent[] = []
  const app = await buildApp({ now: clock.now, onEvent: (e) => { events.push(e) }, mfa: { handlers: [AppHandler, sms.Handler], lockoutThreshold: 3 } })
  t.teardown(() => app.close())
  const secrets: string[] = []
  let seen = 0
  /** The events one step caused, in order, as [type, userId, method]. */
  const step = async <R>(label: string, action: () => Promise<R>, expected: Array<[string, string | null, string?]>): Promise<R> => {
    const result = await action()
    const fresh = events.slice(seen)
    seen = events.length
    t.same(fresh.map((e) => [e.type, e.userId, e.method]), expected.map(([type, userId, method]) => [type, userId, method]), label)
    for (const e of fresh) {
      t.same(Object.keys(e).sort(), (e.method === undefined ? ['at', 'ip', 'type', 'userId'] : ['at', 'ip', 'method', 'type', 'userId']), `${label}: ${e.type} has exactly the documented fields`)
      t.equal(e.ip, '127.0.0.1')
      t.equal(e.at, new Date(clock.now()).toISOString(), `${label}: ${e.type} is stamped with the plugin's clock`)
    }
    return result
  }

  // newUser registers (no event) and logs in once (login_succeeded).
  const u = await newUser(app)
  t.same(events.map((e) => [e.type, e.userId]), [['login_succeeded', u.id]], 'registration fires nothing; the login after it does')
  seen = events.length
  secrets.push(u.password, u.access, u.refresh)

  await step('wrong password', async () => post(app, '/login/', { username: u.username, password: 'wrong password' }), [['login_failed', u.id]])
  await step('unknown user', async () => post(app, '/login/', { username: 'no-such-user', password: 'wrong password' }), [['login_failed', null]])
  const plain = await step('one-step login', async () => post(app, '/login/', { username: u.username, password: u.password }), [['login_succeeded', u.id]])
  const access = plain.body.access as string
  secrets.push(access, plain.body.refresh)

  const created = await step('create app', async () => post(app, '/mfa/', { method: 'app' }, access), [['method_created', u.id, 'app']])
  const secret = secretOf(created.body.setup_data.qr_link)
  secrets.push(secret, created.body.setup_data.qr_link, ...created.body.backup_codes)
  const wrong = wrongCode(...await totpWindow(secret, clock.now()))
  await step('confirm with a wrong code fires nothing but counts', async () => post(app, '/mfa/confirm/', { method: 'app', code: wrong }, access), [])
  const confirmCode = await totp(secret, clock.now())
  secrets.push(confirmCode)
  await step('confirm app', async () => post(app, '/mfa/confirm/', { method: 'app', code: confirmCode }, access), [['method_confirmed', u.id, 'app']])

  // 0.2: with a method active, the method routes want a token carrying mfa (SPEC section 3,
  // "Methods", rule 1); POST /login/step-up/ raises this session and fires step_up_succeeded (section 6).
  clock.advance(30)
  const stepUpCode = await totp(secret, clock.now())
  secrets.push(stepUpCode)
  const raised = await step('step-up', async () => post(app, '/login/step-up/', { code: stepUpCode }, access), [['step_up_succeeded', u.id, 'app']])
  const mfaAccess = raised.body.access as string
  secrets.push(mfaAccess)

  const smsCreated = await step('create sms', async () => post(app, '/mfa/', { method: 'sms' }, mfaAccess), [['method_created', u.id, 'sms']])
  secrets.push(...smsCreated.body.backup_codes, sms.last(u.id))
  await step('confirm sms', async () => post(app, '/mfa/confirm/', { method: 'sms', code: sms.last(u.id) }, mfaAccess), [['method_confirmed', u.id, 'sms']])
  clock.advance(30)

  const started = await step('step 1', async () => post(app, '/login/', { username: u.username, password: u.password }), [['mfa_challenge_started', u.id, 'app']])
  secrets.push(started.body.ephemeral_token)
  await step('wrong code at step 2', async () => post(app, '/login/verify/', { ephemeral_token: started.body.ephemeral_token, code: '000000' }), [['mfa_failed', u.id, 'app']])
  const loginCode = await totp(secret, clock.now())
  secrets.push(loginCode)
  const done = await step('step 2', async () => post(app, '/login/verify/', { ephemeral_token: started.body.ephemeral_token, code: loginCode }),
    [['mfa_verified', u.id, 'app'], ['login_succeeded', u.id]])
  secrets.push(done.body.access, done.body.refresh)

  const again = await post(app, '/login/', { username: u.username, password: u.password })
  seen = events.length
  const backup = await step('step 2 with a backup code of another method', async () => post(app, '/login/verify/', { ephemeral_token: again.body.ephemeral_token, code: smsCreated.body.backup_codes[0] }),
    [['mfa_verified', u.id, 'app'], ['backup_code_used', u.id, 'sms'], ['login_succeeded', u.id]])
  secrets.push(again.body.ephemeral_token, backup.body.access, backup.body.refresh)

  clock.advance(30)
  const primaryCode = await totp(secret, clock.now())
  await step('primary', async () => post(app, '/mfa/primary/', { method: 'sms', primary_code: primaryCode }, mfaAccess), [['primary_changed', u.id, 'sms']])
  const regen = await step('regenerate with a backup code', async () => post(app, '/mfa/backup-codes/', { method: 'app', code: created.body.backup_codes[0] }, mfaAccess),
    [['backup_code_used', u.id, 'app'], ['backup_codes_regenerated', u.id, 'app']])
  secrets.push(...regen.body.backup_codes)
  clock.advance(30)
  await step('deactivate', async () => post(app, '/mfa/deactivate/', { method: 'app', code: await totp(secret, clock.now()) }, mfaAccess), [['method_deactivated', u.id, 'app']])
  await step('delete', async () => post(app, '/mfa/delete/', { method: 'app' , code: 'unused' }, mfaAccess), [['method_deleted', u.id, 'app']])

  // Three wrong codes (lockoutThreshold 3): the third locks.
  await step('wrong code 1', async () => post(app, '/mfa/backup-codes/', { method: 'sms', code: '111111' }, mfaAccess), [])
  await step('wrong code 2', async () => post(app, '/mfa/backup-codes/', { method: 'sms', code: '111112' }, mfaAccess), [])
  await step('the wrong code that locks', async () => post(app, '/mfa/backup-codes/', { method: 'sms', code: '111113' }, mfaAccess), [['user_locked', u.id, 'sms']])
  await step('refused while locked: no new event', async () => post(app, '/mfa/backup-codes/', { method: 'sms', code: '111114' }, mfaAccess), [])

  t.same([...new Set(events.map((e) => e.type))].sort(), [...ALL_TYPES].sort(), 'all 14 types were seen')
  const text = JSON.stringify(events)
  t.same(secrets.filter((s) => typeof s === 'string' && text.includes(s)), [], 'no secret in any event')
})

async function withListener (t: Test, onEvent: (e: AuthKitEvent) => void | Promise<void>) {
  const clock = manualClock()
  const logs = logCapture()
  const app = await buildApp({ now: clock.now, onEvent }, { logger: { level: 'info', stream: logs.stream } })
  t.teardown(() => app.close())
  return { app, logs }
}

t.test('a listener that throws never breaks the answer, and is logged', async (t) => {
  const { app, logs } = await withListener(t, () => { throw new Error('listener exploded') })
  const user = await newUser(app)
  const res = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(res.status, 200)
  t.ok(res.body.access)
  const bad = await post(app, '/login/', { username: user.username, password: 'wrong password' })
  expectError(t, bad, 401, 'AUTH_KIT_INVALID_CREDENTIALS', 'failures keep their own answer')
  const failures = logs.parsed().filter((l) => l.msg === 'fastify-auth-kit: onEvent listener failed')
  t.ok(failures.length >= 2)
  t.match(failures[0], { level: 50, event: 'login_succeeded', err: { message: 'listener exploded' } })
})

t.test('a listener that rejects never breaks the answer, and is logged', async (t) => {
  const { app, logs } = await withListener(t, async () => { throw new Error('async listener failed') })
  const user = await newUser(app)
  t.equal((await post(app, '/login/', { username: user.username, password: user.password })).status, 200)
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(logs.parsed().some((l) => l.msg === 'fastify-auth-kit: onEvent listener failed' && (l.err as { message: string }).message === 'async listener failed'))
})

t.test('a slow listener never delays the answer', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let pending = 0
  const { app } = await withListener(t, async () => {
    pending++
    await gate // held until the test has its answers
    pending--
  })
  const user = await newUser(app)
  const res = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(res.status, 200, 'answered while the listener was still running')
  t.ok(pending >= 2, 'the listener had not finished when the answer came')
  release()
  await gate
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(pending, 0)
})

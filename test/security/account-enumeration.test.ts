// Attack: learning which accounts exist, or which part of a login was right,
// from the answers; and steering step 2 to another user's account.
import t from 'tap'
import { buildApp, manualClock, post, get, newUser, userWithApp, totp, clockedApp } from '../helpers/app.js'
import { countScrypt, eventLog, totpWindow } from '../helpers/security.js'
import { loginToken, wrongCode } from '../helpers/flows.js'

t.test('an unknown user and a wrong password get one answer, and both run the password hash once', async (t) => {
  const clock = manualClock()
  const log = eventLog()
  const app = await buildApp({ now: clock.now, onEvent: log.onEvent })
  t.teardown(() => app.close())
  const plain = await newUser(app)
  const withMfa = await userWithApp(app, clock)
  const scrypt = countScrypt(t)

  // The dummy hash is made once per process; make it before counting.
  await post(app, '/login/', { username: 'warm-up-nobody', password: 'x' })

  const cases = {
    unknownUser: { username: 'nobody-by-this-name', password: 'correct horse battery' },
    unknownEmail: { username: 'nobody@example.com', password: 'whatever it is' },
    wrongPassword: { username: plain.username, password: 'not the password' },
    wrongPasswordByEmail: { username: `${plain.username.toUpperCase()}@EXAMPLE.COM`, password: 'not the password' },
    wrongPasswordMfaUser: { username: withMfa.username, password: 'not the password' },
  }
  const answers: Record<string, { status: number, body: unknown, runs: number }> = {}
  for (const [name, body] of Object.entries(cases)) {
    scrypt.reset()
    const res = await post(app, '/login/', body)
    answers[name] = { status: res.status, body: res.body, runs: scrypt.runs }
  }
  const expected = { statusCode: 401, code: 'AUTH_KIT_INVALID_CREDENTIALS', error: 'Unauthorized', message: 'Unable to log in with the provided credentials.' }
  for (const [name, answer] of Object.entries(answers)) {
    t.equal(answer.status, 401, `${name}: 401`)
    t.same(answer.body, expected, `${name}: the same body`)
    t.equal(answer.runs, 1, `${name}: one slow hash`)
  }
  const failed = log.ofType('login_failed')
  t.ok(failed.some((e) => e.userId === null), 'the event (not the answer) tells an unknown user apart')
  t.ok(failed.some((e) => e.userId === plain.id))
})

t.test('step 2 takes the user only from the ephemeral token', async (t) => {
  const { app, clock } = await clockedApp(t)
  const alice = await userWithApp(app, clock)
  const bob = await userWithApp(app, clock)
  const impersonation = { user_id: bob.id, userId: bob.id, user: bob.id, username: bob.username, sub: bob.id }

  // Alice's token with Bob's code and Bob's name in the body: never Bob's account.
  const token = await loginToken(app, alice)
  const bobsCode = await post(app, '/login/verify/', { ephemeral_token: token, code: await totp(bob.secret, clock.now()), ...impersonation })
  t.not(bobsCode.status, 200, 'a code of another user does not pass')
  t.ok(bobsCode.status === 400 || bobsCode.body.code === 'AUTH_KIT_INVALID_CODE', 'answered as a wrong code (or a body the schema refuses)')
  const bobsBackup = await post(app, '/login/verify/', { ephemeral_token: token, code: bob.backupCodes[0], ...impersonation })
  t.not(bobsBackup.status, 200, 'a backup code of another user does not pass')

  // Alice's own code with Bob named in the body logs Alice in, or is refused.
  const own = await post(app, '/login/verify/', { ephemeral_token: token, code: await totp(alice.secret, clock.now()), ...impersonation })
  if (own.status === 200) {
    t.equal(own.body.user.id, alice.id, 'the tokens are Alice\'s')
    t.equal((await get(app, '/user/', own.body.access)).body.user.id, alice.id)
  } else {
    t.equal(own.status, 400, 'extra fields are refused as a schema error')
  }
  // Bob's backup code is still there: nothing of Bob's was touched.
  const bobLogin = await post(app, '/login/verify/', { ephemeral_token: await loginToken(app, bob), code: bob.backupCodes[0] })
  t.equal(bobLogin.status, 200)
  t.equal(bobLogin.body.user.id, bob.id)
})

t.test('errors at step 2 say the code was wrong and nothing more', async (t) => {
  const { app, clock } = await clockedApp(t, { mfa: { lockoutThreshold: 1000 } })
  const alice = await userWithApp(app, clock)
  const bob = await userWithApp(app, clock)
  const window = await totpWindow(alice.secret, clock.now())

  const wrongCodes = {
    wrongTotp: wrongCode(...window),
    totpOfAnotherUser: await totp(bob.secret, clock.now()),
    expiredTotp: await totp(alice.secret, clock.now() - 10 * 60_000),
    wrongBackupCode: 'ZZZZ-ZZZZ-ZZZZ-ZZZZ',
    backupCodeOfAnotherUser: bob.backupCodes[1],
    notACode: 'letters',
  }
  const bodies = new Set<string>()
  for (const [name, code] of Object.entries(wrongCodes)) {
    const res = await post(app, '/login/verify/', { ephemeral_token: await loginToken(app, alice), code })
    t.equal(res.status, 401, name)
    bodies.add(JSON.stringify(res.body))
  }
  t.same([...bodies], [JSON.stringify({ statusCode: 401, code: 'AUTH_KIT_INVALID_CODE', error: 'Unauthorized', message: 'Invalid code.' })],
    'one body for every kind of wrong code')

  // Every dead token looks alike too.
  const used = await loginToken(app, alice)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: used, code: alice.backupCodes[0] })).status, 200)
  const killed = await loginToken(app, alice)
  for (let i = 0; i < 5; i++) await post(app, '/login/verify/', { ephemeral_token: killed, code: wrongCodes.wrongTotp })
  const expired = await loginToken(app, alice)
  clock.advance(601)
  const deadBodies = new Set<string>()
  for (const token of [used, killed, expired, 'no-such-token', `${used.slice(0, -2)}AA`]) {
    const res = await post(app, '/login/verify/', { ephemeral_token: token, code: await totp(alice.secret, clock.now()) })
    t.equal(res.status, 401)
    deadBodies.add(JSON.stringify(res.body))
  }
  t.equal(deadBodies.size, 1, 'used, killed, expired and unknown tokens get one answer')
  t.match([...deadBodies][0], /AUTH_KIT_INVALID_EPHEMERAL_TOKEN/)

  // Method routes: every wrong code gets the same 403.
  const fresh = await post(app, '/login/', { username: alice.username, password: alice.password })
  t.equal(fresh.status, 200)
  const access = (await post(app, '/login/verify/', { ephemeral_token: fresh.body.ephemeral_token, code: alice.backupCodes[1] })).body.access
  const routeBodies = new Set<string>()
  for (const code of Object.values(wrongCodes)) {
    const res = await post(app, '/mfa/backup-codes/', { method: 'app', code }, access)
    t.equal(res.status, 403)
    routeBodies.add(JSON.stringify(res.body))
  }
  t.equal(routeBodies.size, 1)
})

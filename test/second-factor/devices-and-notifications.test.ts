import t from 'tap'
import { buildApp, get, manualClock, newUser, post, secretOf, totp, confirmTotp, clockedApp } from '../helpers/app.js'
import { buildEmailApp, codeIn, onlyNewMail, startSmtp, type Mailbox } from '../helpers/smtp.js'
import { jwtPayload } from '../helpers/flows.js'

// SPEC section 9 "Trusted devices", "Notification mails" and "Admin API" (issue 14).

const CHROME_ON_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36'

async function twoStepUser (app: Awaited<ReturnType<typeof buildApp>>, clock: ReturnType<typeof manualClock>) {
  const user = await newUser(app)
  const { secret, backupCodes } = await confirmTotp(app, user.access, clock)
  clock.advance(30)
  return { ...user, secret, backupCodes }
}

async function verifyRemembering (app: Awaited<ReturnType<typeof buildApp>>, clock: ReturnType<typeof manualClock>, user: { username: string, password: string, secret: string }) {
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const res = await app.inject({
    method: 'POST', url: '/api/auth/login/verify/', headers: { 'user-agent': CHROME_ON_MAC },
    payload: { ephemeral_token: step1.body.ephemeral_token, code: await totp(user.secret, clock.now()), remember_device: true },
  })
  clock.advance(30)
  return res.json()
}

t.test('a remembered device skips the second step, with the auth_time of its remembering', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await twoStepUser(app, clock)
  const rememberedAt = Math.floor(clock.now() / 1000)
  const verified = await verifyRemembering(app, clock, user)
  t.type(verified.device_token, 'string')
  t.ok(verified.device_token.length >= 43, 'at least 256 bits')
  t.equal(Date.parse(verified.device_expiration) - clock.now() + 30_000, 30 * 86_400_000, 'lives trustedDeviceDays')
  const stored = await app.authKit.db.selectFrom('auth_kit_trusted_device').selectAll().execute()
  t.notOk(JSON.stringify(stored).includes(verified.device_token), 'stored only as a hash')

  clock.advance(3600)
  const login = await post(app, '/login/', { username: user.username, password: user.password, device_token: verified.device_token })
  t.equal(login.body.mfa_enabled, false)
  t.ok(login.body.refresh)
  const claims = jwtPayload(login.body.access)
  t.same(claims.amr, ['pwd', 'mfa'])
  t.equal(claims.auth_time, rememberedAt, 'auth_time is when the device was remembered')

  const devices = await get(app, '/devices/', login.body.access)
  t.equal(devices.body.length, 1)
  t.equal(devices.body[0].label, 'Chrome on macOS')
  t.equal(devices.body[0].current, true)
})

t.test('a device token of another user, an unknown, expired or revoked one is ignored without saying why', async (t) => {
  const { app, clock } = await clockedApp(t, { mfa: { trustedDeviceDays: 1 } })
  const alice = await twoStepUser(app, clock)
  const bob = await twoStepUser(app, clock)
  const aliceDevice = (await verifyRemembering(app, clock, alice)).device_token
  const asBob = await post(app, '/login/', { username: bob.username, password: bob.password, device_token: aliceDevice })
  t.equal(asBob.body.mfa_enabled, true, 'another user\'s token: the normal second step')
  t.equal((await post(app, '/login/', { username: alice.username, password: alice.password, device_token: 'x'.repeat(43) })).body.mfa_enabled, true, 'unknown')

  const aliceLogin = await post(app, '/login/', { username: alice.username, password: alice.password, device_token: aliceDevice })
  const [device] = (await get(app, '/devices/', aliceLogin.body.access)).body
  t.equal((await post(app, '/devices/revoke/', { id: device.id }, aliceLogin.body.access)).status, 204)
  t.equal((await post(app, '/login/', { username: alice.username, password: alice.password, device_token: aliceDevice })).body.mfa_enabled, true, 'revoked')

  const again = (await verifyRemembering(app, clock, alice)).device_token
  clock.advance(86_401)
  t.equal((await post(app, '/login/', { username: alice.username, password: alice.password, device_token: again })).body.mfa_enabled, true, 'expired')
})

t.test('changing a factor forgets every remembered device', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await twoStepUser(app, clock)
  const first = await verifyRemembering(app, clock, user)
  t.equal((await post(app, '/mfa/backup-codes/', { method: 'app', code: user.backupCodes[0] }, first.access)).status, 200)
  t.equal((await post(app, '/login/', { username: user.username, password: user.password, device_token: first.device_token })).body.mfa_enabled, true, 'regenerated backup codes')

  const second = await verifyRemembering(app, clock, user)
  t.equal((await post(app, '/sessions/revoke-others/', {}, second.access)).status, 204)
  t.equal((await post(app, '/login/', { username: user.username, password: user.password, device_token: second.device_token })).body.mfa_enabled, true, 'revoke-others')

  const third = await verifyRemembering(app, clock, user)
  await app.authKit.admin.resetMfa(user.id)
  const after = await post(app, '/login/', { username: user.username, password: user.password, device_token: third.device_token })
  t.equal(after.body.mfa_enabled, false, 'after a reset the login is one step')
  t.same(jwtPayload(after.body.access).amr, ['pwd'], 'and the old device gives no second factor')
  t.equal((await get(app, '/user/', third.access)).status, 401, 'the reset ended every session')
})

t.test('admin: listMethods, unlock and resetMfa, each with its event and ip null', async (t) => {
  const clock = manualClock()
  const events: Array<{ type: string, userId: string | null, ip: string | null }> = []
  const app = await buildApp({ now: clock.now, onEvent: (e) => { events.push(e) } })
  t.teardown(() => app.close())
  const user = await twoStepUser(app, clock)
  t.same((await app.authKit.admin.listMethods(user.id)).map((m) => [m.name, m.is_active, m.is_primary]), [['app', true, true]])
  for (let i = 0; i < 10; i++) await post(app, '/login/step-up/', { code: '000000' }, user.access)
  t.equal((await post(app, '/login/step-up/', { code: await totp(user.secret, clock.now()) }, user.access)).status, 429, 'locked')
  events.length = 0
  await app.authKit.admin.unlock(user.id)
  t.equal((await post(app, '/login/step-up/', { code: await totp(user.secret, clock.now()) }, user.access)).status, 200, 'unlocked')
  t.match(events[0], { type: 'user_unlocked', userId: user.id, ip: null })
  events.length = 0
  await app.authKit.admin.resetMfa(user.id)
  t.match(events, [{ type: 'mfa_reset', userId: user.id, ip: null }])
  t.same((await app.authKit.admin.listMethods(user.id)).map((m) => m.is_setup), [false])
})

async function mailsFor (mailbox: Mailbox, count: number) {
  // Notifications go out after the route has answered: wait for them (bounded).
  for (let i = 0; i < 100 && mailbox.messages.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  return mailbox.messages
}

t.test('notification mails: one per change, each saying what, when, from where, and what to do; never a secret', async (t) => {
  const mailbox = await startSmtp()
  t.teardown(() => mailbox.close())
  const clock = manualClock()
  const app = await buildEmailApp(mailbox.port, { now: clock.now, notifications: true, mfa: { resendCooldown: 0 } })
  t.teardown(() => app.close())
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  const secret = secretOf(created.body.setup_data.qr_link)
  const before = mailbox.messages.length
  const confirmed = await app.inject({
    method: 'POST', url: '/api/auth/mfa/confirm/', headers: { authorization: `Bearer ${user.access}`, 'user-agent': CHROME_ON_MAC },
    payload: { method: 'app', code: await totp(secret, clock.now()) },
  })
  t.equal(confirmed.statusCode, 200)
  const [mail] = (await mailsFor(mailbox, before + 1)).slice(before)
  t.ok(mail, 'a mail came')
  t.match(mail.text, /Authenticator App was turned on/)
  t.match(mail.text, /When: \d{4}-\d\d-\d\dT/)
  t.match(mail.text, /127\.0\.0\.1 \(Chrome on macOS\)/)
  t.match(mail.text, /If it was not/)
  t.match(String(mail.html), /turned on/)
  for (const secretValue of [secret, ...created.body.backup_codes, user.access, user.refresh]) {
    t.notOk(`${mail.text}${String(mail.html)}${mail.subject}`.includes(secretValue), 'no secret, code or token')
  }

  clock.advance(30)
  const up = await post(app, '/login/step-up/', { code: await totp(secret, clock.now()) }, user.access)
  const n = mailbox.messages.length
  t.equal((await post(app, '/mfa/backup-codes/', { method: 'app', code: created.body.backup_codes[0] }, up.body.access)).status, 200)
  const [regenerated] = (await mailsFor(mailbox, n + 1)).slice(n)
  t.match(regenerated.text, /New backup codes were made/)

  // An email method: its setup code mail and then its confirmation notice.
  const m = mailbox.messages.length
  await post(app, '/mfa/', { method: 'email' }, up.body.access)
  const code = codeIn(onlyNewMail(mailbox, m))
  await post(app, '/mfa/confirm/', { method: 'email', code }, up.body.access)
  const [emailOn] = (await mailsFor(mailbox, m + 2)).slice(m + 1)
  t.match(emailOn.text, /Email was turned on/)
})

t.test('a failed notification never fails the route', async (t) => {
  const mailbox = await startSmtp()
  t.teardown(() => mailbox.close())
  const clock = manualClock()
  const app = await buildEmailApp(mailbox.port, { now: clock.now, notifications: true })
  t.teardown(() => app.close())
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  mailbox.mode = 'reject-message'
  const confirmed = await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secretOf(created.body.setup_data.qr_link), clock.now()) }, user.access)
  t.equal(confirmed.status, 200)
})

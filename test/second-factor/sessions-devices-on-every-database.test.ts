import t from 'tap'
import { buildApp, get, manualClock, newUser, post, secretOf, totp } from '../helpers/app.js'
import { onEveryDialect } from '../helpers/dialects.js'
import { jwtPayload } from '../helpers/flows.js'
import { startSmtp } from '../helpers/smtp.js'
import { AppHandler, EmailHandler } from '../../src/index.js'

// SPEC section 9 (trusted devices, sessions, notification mails, admin API)
// on every database the environment has: SQLite always, PostgreSQL and
// MariaDB when reachable (issue 14).

const mailbox = await startSmtp()
t.teardown(() => mailbox.close())

await onEveryDialect(t, 'devices, sessions, notifications and the admin API', async (t, scratch) => {
  const clock = manualClock()
  const app = await buildApp({
    database: scratch.url, now: clock.now,
    email: { transport: { host: '127.0.0.1', port: mailbox.port, secure: false, ignoreTLS: true }, from: 'no-reply@example.com' },
    mfa: { handlers: [AppHandler, EmailHandler] },
  })
  t.teardown(() => app.close())
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  const secret = secretOf(created.body.setup_data.qr_link)
  const before = mailbox.messages.length
  t.equal((await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, user.access)).status, 200)
  for (let i = 0; i < 100 && mailbox.messages.length === before; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.match(mailbox.messages.at(-1)?.text, /turned on/, 'the notification mail came')
  clock.advance(30)

  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const verified = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(secret, clock.now()), remember_device: true })
  t.equal(verified.status, 200)
  t.type(verified.body.device_token, 'string')
  clock.advance(30)
  const viaDevice = await post(app, '/login/', { username: user.username, password: user.password, device_token: verified.body.device_token })
  t.equal(viaDevice.body.mfa_enabled, false)
  t.same(jwtPayload(viaDevice.body.access).amr, ['pwd', 'mfa'])

  const sessions = await get(app, '/sessions/', viaDevice.body.access)
  t.equal(sessions.body.length, 3, 'three live sessions')
  t.equal(sessions.body.filter((s: { current: boolean }) => s.current).length, 1)
  const devices = await get(app, '/devices/', viaDevice.body.access)
  t.equal(devices.body.length, 1)
  t.equal(devices.body[0].current, true)

  t.equal((await post(app, '/sessions/revoke/', { id: jwtPayload(verified.body.access).sid }, viaDevice.body.access)).status, 204)
  t.equal((await get(app, '/user/', verified.body.access)).status, 401, 'a revoked session is refused at once')
  t.equal((await post(app, '/devices/revoke/', { id: devices.body[0].id }, viaDevice.body.access)).status, 204)
  t.equal((await post(app, '/login/', { username: user.username, password: user.password, device_token: verified.body.device_token })).body.mfa_enabled, true, 'a revoked device is ignored')

  await app.authKit.admin.resetMfa(user.id)
  t.equal((await get(app, '/user/', viaDevice.body.access)).status, 401, 'resetMfa ended every session')
  t.same((await app.authKit.admin.listMethods(user.id)).map((m) => m.is_setup), [false, false])
  t.equal((await post(app, '/login/', { username: user.username, password: user.password })).body.mfa_enabled, false, 'the next login is one step')
})

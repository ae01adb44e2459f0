import t from 'tap'
import { type AuthKitOptions } from '../../src/index.js'
import { buildApp, get, newUser, post, secretOf, totp, expectError, confirmTotp, appOverStore, clockedApp } from '../helpers/app.js'
import { buildEmailApp, smtpTransport, startSmtp, FROM, codeMailedBy } from '../helpers/smtp.js'
import { createServer } from 'node:net'

// Rules 3, 7 and 9, and issue 8's faults 3, 4, 5, 6, 8, 10 and 11.

t.test('a colon in a username never reaches the otpauth label as a separator', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const registered = await post(app, '/registration/', { username: 'ops:admin', email: 'ops@example.com', password: 'correct horse battery' })
  t.equal(registered.status, 201)
  const user = { access: (await post(app, '/login/', { username: 'ops:admin', password: 'correct horse battery' })).body.access }
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  const link = new URL(created.body.setup_data.qr_link)
  const label = decodeURIComponent(link.pathname.replace(/^\/\/?totp\//, '').replace(/^\//, ''))
  t.equal(label.split(':').length, 2, `exactly one colon in "${label}"`)
  t.ok(label.startsWith('My App:'), 'issuer before it')
  t.equal(link.searchParams.get('issuer'), 'My App')
})

t.test('a TOTP typed as the app shows it ("123 456", "123-456", padded) is accepted', async (t) => {
  const { app, clock } = await clockedApp(t)
  for (const shape of [(c: string) => `${c.slice(0, 3)} ${c.slice(3)}`, (c: string) => `${c.slice(0, 3)}-${c.slice(3)}`, (c: string) => ` ${c}\t`]) {
    const user = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'app' }, user.access)
    const secret = secretOf(created.body.setup_data.qr_link)
    const typed = shape(await totp(secret, clock.now()))
    const confirmed = await post(app, '/mfa/confirm/', { method: 'app', code: typed }, user.access)
    t.equal(confirmed.status, 200, JSON.stringify(typed))
    clock.advance(30)
    const step1 = await post(app, '/login/', { username: user.username, password: user.password })
    const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: shape(await totp(secret, clock.now())) })
    t.equal(step2.status, 200, 'at login too')
  }
})

t.test('an emailed code typed with a space is accepted', async (t) => {
  const mailbox = await startSmtp()
  t.teardown(() => mailbox.close())
  const app = await buildEmailApp(mailbox.port)
  t.teardown(() => app.close())
  const user = await newUser(app)
  const code = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/mfa/', { method: 'email' }, user.access)).status, 201))
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code: `${code.slice(0, 3)} ${code.slice(3)}` }, user.access)).status, 200)
})

t.test('a mail header injected through the user store is refused: 422, nothing sent, nothing created', async (t) => {
  const mailbox = await startSmtp()
  t.teardown(() => mailbox.close())
  const hostile = [
    'victim@example.test\r\nBcc: someone@example.test',
    'victim@example.test, someone@example.test',
    'victim@example.test; someone@example.test',
    'Victim <someone@example.test>',
    'group: someone@example.test;',
    'victim@example.test\nX-Other: 1',
  ]
  let address = ''
  const app = await appOverStore(t, () => ({ emailOf: () => address }), {
    email: { transport: smtpTransport(mailbox.port), from: FROM }, mfa: { resendCooldown: 0 },
  })
  const user = await newUser(app)
  for (const value of hostile) {
    address = value
    const before = mailbox.messages.length
    const res = await post(app, '/mfa/', { method: 'email' }, user.access)
    expectError(t, res, 422, 'AUTH_KIT_NO_EMAIL_ADDRESS', JSON.stringify(value))
    t.equal(mailbox.messages.length, before, 'nothing sent')
    t.equal((await get(app, '/mfa/', user.access)).body.find((m: { name: string }) => m.name === 'email').is_setup, false, 'nothing created')
  }
  address = 'plain@example.test'
  t.equal((await post(app, '/mfa/', { method: 'email' }, user.access)).status, 201, 'one plain mailbox works')
  t.same(mailbox.messages.at(-1)!.to, mailbox.messages.at(-1)!.to)
})

t.test('an abandoned setup is removed without a code', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const user = await newUser(app)
  await post(app, '/mfa/', { method: 'app' }, user.access)
  const res = await post(app, '/mfa/delete/', { method: 'app' }, user.access)
  t.equal(res.status, 204)
  t.equal((await get(app, '/mfa/', user.access)).body[0].is_setup, false)
})

t.test('an active method without a code is a 403 under deleteActiveMethodRequireCode', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await newUser(app)
  const { secret } = await confirmTotp(app, user.access, clock)
  clock.advance(30)
  const up = await post(app, '/login/step-up/', { code: await totp(secret, clock.now()) }, user.access)
  const res = await post(app, '/mfa/delete/', { method: 'app' }, up.body.access)
  expectError(t, res, 403, 'AUTH_KIT_INVALID_CODE')
})

t.test('a mail server that never answers: a 503 within email.timeout, nothing created', async (t) => {
  // Accepts the connection and never says a word.
  const sockets: Array<import('node:net').Socket> = []
  const silent = createServer((socket) => { sockets.push(socket) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); silent.close() })
  const port = (silent.address() as { port: number }).port
  const app = await buildEmailApp(port, { email: { transport: smtpTransport(port), from: FROM, timeout: 1 } } as Partial<AuthKitOptions>)
  t.teardown(() => app.close())
  const user = await newUser(app)
  const res = await post(app, '/mfa/', { method: 'email' }, user.access)
  expectError(t, res, 503, 'AUTH_KIT_DELIVERY_FAILED')
  t.equal((await get(app, '/mfa/', user.access)).body.find((m: { name: string }) => m.name === 'email').is_setup, false, 'nothing created')
  const again = await post(app, '/mfa/send/', { method: 'email' }, user.access)
  t.not(again.body?.code, 'AUTH_KIT_RESEND_TOO_SOON', 'a failed delivery starts no cooldown')
})

t.test('no body is coerced: numbers, booleans, arrays and objects for every string field are 400 and count nothing', async (t) => {
  const { app, clock } = await clockedApp(t, { docs: { routePrefix: '/docs' } })
  const user = await newUser(app)
  const { secret } = await confirmTotp(app, user.access, clock)
  clock.advance(30)
  const access = (await post(app, '/login/step-up/', { code: await totp(secret, clock.now()) }, user.access)).body.access
  clock.advance(30)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const lockRow = async () => app.authKit.db.selectFrom('auth_kit_user_lock').selectAll().where('user_id', '=', user.id).executeTakeFirst()
  const attemptRow = async () => app.authKit.db.selectFrom('auth_kit_login_attempt').select(['failures', 'used_at']).where('user_id', '=', user.id).execute()
  const lockBefore = await lockRow()
  const attemptsBefore = await attemptRow()

  const document = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
  const valid: Record<string, unknown> = {
    username: user.username, password: user.password, ephemeral_token: step1.body.ephemeral_token, code: '123456', primary_code: '123456',
    method: 'app', new_method: 'app', refresh: user.refresh, email: 'x@example.com', id: 'x', device_token: 'x',
  }
  let checked = 0
  for (const [path, item] of Object.entries<Record<string, any>>(document.paths)) {
    const op = item.post
    const schema = op?.requestBody?.content?.['application/json']?.schema
    if (schema === undefined) continue
    const props: Record<string, { type?: string }> = schema.properties ?? {}
    for (const [field, prop] of Object.entries(props)) {
      if (prop.type !== 'string' && !('$ref' in prop)) continue
      for (const bad of [123456, true, ['123456'], { value: '123456' }]) {
        const body = Object.fromEntries(Object.keys(props).filter((k) => (schema.required ?? []).includes(k) || k === field).map((k) => [k, valid[k]]))
        body[field] = bad
        const res = await post(app, path.replace(/^\/api\/auth/, ''), body, access)
        expectError(t, res, 400, 'FST_ERR_VALIDATION', `${path} ${field}=${JSON.stringify(bad)}`)
        checked++
      }
    }
  }
  t.ok(checked >= 40, `checked ${checked} field and type pairs`)
  t.same(await lockRow(), lockBefore, 'no wrong code counted')
  t.same(await attemptRow(), attemptsBefore, 'the attempt untouched')
  const stillWorks = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(secret, clock.now()) })
  t.equal(stillWorks.status, 200)
})

t.test('a code sent as a JSON number equal to the right code is refused', async (t) => {
  const { app, clock } = await clockedApp(t)
  const user = await newUser(app)
  const { secret } = await confirmTotp(app, user.access, clock)
  // A step whose code has no leading zero, so the number is the same code.
  do clock.advance(30); while ((await totp(secret, clock.now())).startsWith('0'))
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const res = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: Number(await totp(secret, clock.now())) })
  expectError(t, res, 400, 'FST_ERR_VALIDATION')
})

t.test('a server error never sends its own words to a client', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const user = await newUser(app)
  // A table the route needs is gone: the database's message must stay in the log.
  await app.authKit.db.schema.dropTable('auth_kit_backup_code').execute()
  const res = await post(app, '/mfa/', { method: 'app' }, user.access)
  t.equal(res.status, 500)
  t.notMatch(res.body.message, /auth_kit|table|sqlite/i)
  t.same(Object.keys(res.body).sort(), ['error', 'message', 'statusCode'])
})

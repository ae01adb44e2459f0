import t from 'tap'
import { AppHandler, EmailHandler, type UserStore, type AuthKitUser } from '../src/index.js'
import { buildApp, manualClock, newUser, post, stepUp, expectError } from './helpers/app.js'
import { FROM, emailApp, codeIn, emailMethodOf, onlyNewMail, recipientOf, smtpTransport, startSmtp, userWithEmail, codeMailedBy, appWithEmailUser } from './helpers/smtp.js'

const mailbox = await startSmtp()
t.teardown(() => mailbox.close())



t.test('setting up the email method mails a code that confirms it', async (t) => {
  const { app } = await emailApp(t, mailbox)
  const user = await newUser(app)
  const before = mailbox.messages.length
  const created = await post(app, '/mfa/', { method: 'email' }, user.access)
  t.equal(created.status, 201)
  t.same(created.body.setup_data, { detail: 'Email message with MFA code has been sent.' })
  t.equal(created.body.method, 'email')
  t.equal(created.body.backup_codes.length, 10)
  const mail = onlyNewMail(mailbox, before)
  t.equal(recipientOf(mail), `${user.username}@example.com`)
  t.equal(mail.from?.value[0]?.address, FROM)

  t.match(await emailMethodOf(app, user.access), { is_setup: true, is_active: false, requires_dispatch: true })
  const confirmed = await post(app, '/mfa/confirm/', { method: 'email', code: codeIn(mail) }, user.access)
  t.equal(confirmed.status, 200)
  t.match(await emailMethodOf(app, user.access), { is_setup: true, is_active: true, is_primary: true })
})

t.test('the code mail has a clear subject, a text and an HTML part, the code, the application name and the code\'s life', async (t) => {
  const { app } = await emailApp(t, mailbox, { mfa: { emailCodeExpiry: 300 } })
  const user = await newUser(app)
  const before = mailbox.messages.length
  const created = await post(app, '/mfa/', { method: 'email' }, user.access)
  const mail = onlyNewMail(mailbox, before)
  const code = codeIn(mail)
  t.match(code, /^[0-9]{6}$/)
  t.equal(mail.subject, 'Your Test App verification code')
  t.match(mail.text, code)
  t.match(mail.text, 'Test App')
  t.match(mail.text, '5 minutes')
  t.type(mail.html, 'string')
  t.match(mail.html as string, code)
  t.match(mail.html as string, 'Test App')
  t.match(mail.html as string, '5 minutes')
  // Nothing else secret: no backup code, no token.
  const body = `${mail.subject}\n${mail.text}\n${mail.html}`
  for (const backup of created.body.backup_codes as string[]) t.notMatch(body, backup)
  t.notMatch(body, user.access)
  t.equal(body.match(/[0-9]{6}/g)?.filter((digits) => digits !== code).length ?? 0, 0, 'no other six-digit number')
})

t.test('a host template replaces the mail', async (t) => {
  const { app } = await emailApp(t, mailbox, {
    email: { template: ({ code, applicationName, expiresInMinutes }) => ({ subject: `${applicationName} sign-in`, text: `Code ${code}, ${expiresInMinutes} min`, html: `<b>${code}</b>` }) },
  })
  const user = await newUser(app)
  const before = mailbox.messages.length
  t.equal((await post(app, '/mfa/', { method: 'email' }, user.access)).status, 201)
  const mail = onlyNewMail(mailbox, before)
  t.equal(mail.subject, 'Test App sign-in')
  t.match(mail.text, /^Code [0-9]{6}, 10 min/)
  t.equal(mail.html, `<b>${codeIn(mail)}</b>`)
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code: codeIn(mail) }, user.access)).status, 200)
})

t.test('a wrong code does not confirm the method, and the mailed one still does', async (t) => {
  const { app } = await emailApp(t, mailbox)
  const user = await newUser(app)
  const code = await codeMailedBy(mailbox, () => post(app, '/mfa/', { method: 'email' }, user.access))
  const wrong = code === '000000' ? '000001' : '000000'
  const refused = await post(app, '/mfa/confirm/', { method: 'email', code: wrong }, user.access)
  expectError(t, refused, 403, 'AUTH_KIT_INVALID_CODE')
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code }, user.access)).status, 200)
})

t.test('confirm takes no backup code', async (t) => {
  const { app } = await emailApp(t, mailbox)
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'email' }, user.access)
  const refused = await post(app, '/mfa/confirm/', { method: 'email', code: created.body.backup_codes[0] }, user.access)
  expectError(t, refused, 403, 'AUTH_KIT_INVALID_CODE')
})

t.test('a mailed code works once', async (t) => {
  const { app, user } = await appWithEmailUser(t, mailbox)
  const code = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 200))
  const first = await post(app, '/mfa/backup-codes/', { method: 'email', code }, user.access)
  t.equal(first.status, 200)
  const again = await post(app, '/mfa/backup-codes/', { method: 'email', code }, user.access)
  expectError(t, again, 403, 'AUTH_KIT_INVALID_CODE')
})

t.test('the setup code, once used to confirm, does not work again', async (t) => {
  const { app } = await emailApp(t, mailbox)
  const user = await newUser(app)
  const before = mailbox.messages.length
  const created = await post(app, '/mfa/', { method: 'email' }, user.access)
  const code = codeIn(onlyNewMail(mailbox, before))
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code }, user.access)).status, 200)
  // The method routes now want a token carrying mfa (SPEC section 3, "Methods"); a backup code raises this one.
  const access = await stepUp(app, user.access, created.body.backup_codes[0], 'email')
  const again = await post(app, '/mfa/backup-codes/', { method: 'email', code }, access)
  expectError(t, again, 403, 'AUTH_KIT_INVALID_CODE')
})

t.test('a mailed code stops working after emailCodeExpiry', async (t) => {
  const { app, clock } = await emailApp(t, mailbox, { mfa: { emailCodeExpiry: 120 } })
  const user = await newUser(app)
  const code = await codeMailedBy(mailbox, () => post(app, '/mfa/', { method: 'email' }, user.access))
  clock.advance(120)
  const late = await post(app, '/mfa/confirm/', { method: 'email', code }, user.access)
  expectError(t, late, 403, 'AUTH_KIT_INVALID_CODE')

  const resent = mailbox.messages.length
  t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 200)
  const fresh = codeIn(onlyNewMail(mailbox, resent))
  clock.advance(119)
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code: fresh }, user.access)).status, 200, 'a code works until its last second')
})

t.test('only the latest code sent for the method works', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const user = await newUser(app)
  const first = await codeMailedBy(mailbox, () => post(app, '/mfa/', { method: 'email' }, user.access))
  clock.advance(30)
  const second = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 200))
  if (first !== second) {
    const stale = await post(app, '/mfa/confirm/', { method: 'email', code: first }, user.access)
    t.equal(stale.status, 403, 'the earlier code is refused')
  }
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code: second }, user.access)).status, 200)
})

t.test('send within resendCooldown is 429 with Retry-After and mails nothing', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox, { mfa: { resendCooldown: 60 } })
  const before = mailbox.messages.length
  const code = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 200))
  clock.advance(20)
  const early = await post(app, '/mfa/send/', { method: 'email' }, user.access)
  expectError(t, early, 429, 'AUTH_KIT_RESEND_TOO_SOON')
  t.equal(early.headers['retry-after'], '40')
  t.equal(early.body.message, 'A code was sent moments ago. Try again in 40 seconds.')
  t.equal(mailbox.messages.length, before + 1, 'no second mail')
  clock.advance(40)
  const later = mailbox.messages.length
  t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 200)
  const fresh = codeIn(onlyNewMail(mailbox, later))
  if (fresh !== code) t.equal((await post(app, '/mfa/backup-codes/', { method: 'email', code }, user.access)).status, 403)
  t.equal((await post(app, '/mfa/backup-codes/', { method: 'email', code: fresh }, user.access)).status, 200)
})

t.test('the cooldown holds per user', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const alice = await userWithEmail(app, mailbox, clock)
  const bob = await userWithEmail(app, mailbox, clock)
  t.equal((await post(app, '/mfa/send/', { method: 'email' }, alice.access)).status, 200)
  const before = mailbox.messages.length
  t.equal((await post(app, '/mfa/send/', { method: 'email' }, bob.access)).status, 200)
  t.equal(recipientOf(onlyNewMail(mailbox, before)), bob.email)
})

t.test('the cooldown holds per method', async (t) => {
  class WorkEmailHandler extends EmailHandler {
    static override NAME = 'work_email'
  }
  const clock = manualClock()
  const app = await buildApp({
    email: { transport: smtpTransport(mailbox.port), from: FROM },
    mfa: { handlers: [AppHandler, EmailHandler, WorkEmailHandler] },
    now: clock.now,
  })
  t.teardown(() => app.close())
  const user = await newUser(app)
  t.equal((await post(app, '/mfa/', { method: 'email' }, user.access)).status, 201)
  const before = mailbox.messages.length
  t.equal((await post(app, '/mfa/', { method: 'work_email' }, user.access)).status, 201)
  const mail = onlyNewMail(mailbox, before)
  t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 429)
  t.equal((await post(app, '/mfa/confirm/', { method: 'work_email', code: codeIn(mail) }, user.access)).status, 200)
})

t.test('send works for an email method that is set up but not yet confirmed', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const user = await newUser(app)
  await post(app, '/mfa/', { method: 'email' }, user.access)
  clock.advance(30)
  const before = mailbox.messages.length
  const sent = await post(app, '/mfa/send/', { method: 'email' }, user.access)
  t.equal(sent.status, 200)
  t.same(sent.body, { detail: sent.body.detail })
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code: codeIn(onlyNewMail(mailbox, before)) }, user.access)).status, 200)
})

t.test('send for a user without the email method is 404 and mails nothing', async (t) => {
  const { app } = await emailApp(t, mailbox)
  const user = await newUser(app)
  const before = mailbox.messages.length
  const sent = await post(app, '/mfa/send/', { method: 'email' }, user.access)
  expectError(t, sent, 404, 'AUTH_KIT_METHOD_NOT_FOUND')
  t.equal(mailbox.messages.length, before)
})

t.test('a user with no email address cannot set up the email method', async (t) => {
  const users = new Map<string, AuthKitUser>([['u1', { id: 'u1', username: 'nomail' }]])
  const store: UserStore = {
    async findByLogin (login) { return [...users.values()].find((u) => u.username === login) },
    async findById (id) { return users.get(id) },
    async verifyPassword (_user, password) { return password === 'correct horse battery' },
    toPublic (user) { return { id: String(user.id), username: user.username } },
    emailOf () { return null },
  }
  const { app } = await emailApp(t, mailbox, { users: store, registration: false })
  const login = await post(app, '/login/', { username: 'nomail', password: 'correct horse battery' })
  t.equal(login.status, 200)
  const before = mailbox.messages.length
  const created = await post(app, '/mfa/', { method: 'email' }, login.body.access)
  expectError(t, created, 422, 'AUTH_KIT_NO_EMAIL_ADDRESS')
  t.equal(mailbox.messages.length, before, 'nothing was mailed')
  t.match(await emailMethodOf(app, login.body.access), { is_setup: false, is_active: false })
  t.equal((await post(app, '/mfa/', { method: 'app' }, login.body.access)).status, 201, 'the app method is still on offer')
})

t.test('deleting and re-creating the method does not get round the cooldown', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const user = await newUser(app)
  const before = mailbox.messages.length
  const first = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/mfa/', { method: 'email' }, user.access)).status, 201))
  t.equal((await post(app, '/mfa/delete/', { method: 'email', code: '000000' }, user.access)).status, 204, 'an inactive method is deleted without its code')
  const again = await post(app, '/mfa/', { method: 'email' }, user.access)
  t.equal(again.status, 201)
  t.equal(mailbox.messages.length, before + 1, 'no second mail within the cooldown')
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code: first }, user.access)).status, 403, 'the deleted method\'s code does not carry over')
  clock.advance(30)
  const sent = mailbox.messages.length
  t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 200)
  t.equal((await post(app, '/mfa/confirm/', { method: 'email', code: codeIn(onlyNewMail(mailbox, sent)) }, user.access)).status, 200)
})

t.test('a mailed code is stored only as a hash', async (t) => {
  const { app } = await emailApp(t, mailbox)
  const user = await newUser(app)
  const code = await codeMailedBy(mailbox, () => post(app, '/mfa/', { method: 'email' }, user.access))
  const rows = await app.authKit.db.selectFrom('auth_kit_sent_code').selectAll().where('user_id', '=', user.id).execute()
  t.equal(rows.length, 1)
  t.type(rows[0].code_hash, 'string')
  t.notMatch(JSON.stringify(rows), code)
})

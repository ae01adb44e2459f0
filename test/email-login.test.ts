import t from 'tap'
import { get, post, totp, userWithApp, expectError } from './helpers/app.js'
import { emailApp, codeIn, onlyNewMail, recipientOf, startSmtp, userWithAppAndEmail, startMailedLogin, codeMailedBy, appWithEmailUser } from './helpers/smtp.js'

const mailbox = await startSmtp()
t.teardown(() => mailbox.close())


function otherThan (code: string): string {
  return code === '123456' ? '654321' : '123456'
}

function claimsOf (access: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(access.split('.')[1], 'base64url').toString('utf8'))
}

t.test('login with email as primary: step 1 mails a code, step 2 takes it', async (t) => {
  const { app, user } = await appWithEmailUser(t, mailbox)
  const before = mailbox.messages.length
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(step1.status, 200)
  t.same(step1.body, { mfa_enabled: true, ephemeral_token: step1.body.ephemeral_token, method: 'email', methods: ['email'] })
  const mail = onlyNewMail(mailbox, before)
  t.equal(recipientOf(mail), user.email)
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: codeIn(mail) })
  t.equal(step2.status, 200)
  t.ok(step2.body.access)
  t.ok(step2.body.refresh)
  t.same(claimsOf(step2.body.access).amr, ['pwd', 'mfa'])
  t.equal((await get(app, '/user/', step2.body.access)).status, 200)
})

t.test('a wrong code at login verify is 401 and the mailed one still works', async (t) => {
  const { app, user } = await appWithEmailUser(t, mailbox)
  const { ephemeral_token: step1Token, code } = await startMailedLogin(app, mailbox, user)
  const wrong = await post(app, '/login/verify/', { ephemeral_token: step1Token, code: otherThan(code) })
  expectError(t, wrong, 401, 'AUTH_KIT_INVALID_CODE')
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1Token, code })).status, 200)
})

t.test('the code of a login works once', async (t) => {
  const { app, user } = await appWithEmailUser(t, mailbox)
  const before = mailbox.messages.length
  const { ephemeral_token: firstToken, code } = await startMailedLogin(app, mailbox, user)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: firstToken, code })).status, 200)
  // A second login within the cooldown sends nothing new; the used code is spent.
  const second = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(second.status, 200)
  t.equal(mailbox.messages.length, before + 1, 'no mail within the cooldown')
  const reused = await post(app, '/login/verify/', { ephemeral_token: second.body.ephemeral_token, code })
  expectError(t, reused, 401, 'AUTH_KIT_INVALID_CODE')
})

t.test('login step 1 within the cooldown mails nothing and the code sent last still works', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox)
  const before = mailbox.messages.length
  const { ephemeral_token: firstToken, code } = await startMailedLogin(app, mailbox, user)
  clock.advance(10)
  const second = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(second.status, 200)
  t.equal(second.body.method, 'email')
  t.equal(mailbox.messages.length, before + 1)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: second.body.ephemeral_token, code })).status, 200)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: firstToken, code })).status, 401, 'and only once')
})

t.test('a later login\'s code replaces the earlier one, for every attempt', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox)
  const { ephemeral_token: firstToken, code: early } = await startMailedLogin(app, mailbox, user)
  clock.advance(30)
  const { ephemeral_token: secondToken, code: late } = await startMailedLogin(app, mailbox, user)
  if (early !== late) {
    t.equal((await post(app, '/login/verify/', { ephemeral_token: firstToken, code: early })).status, 401)
    t.equal((await post(app, '/login/verify/', { ephemeral_token: secondToken, code: early })).status, 401)
  }
  t.equal((await post(app, '/login/verify/', { ephemeral_token: firstToken, code: late })).status, 200, 'sent codes belong to the method')
})

t.test('resend mails exactly one new code, which replaces the previous one', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox)
  const { ephemeral_token: step1Token, code: first } = await startMailedLogin(app, mailbox, user)
  clock.advance(30)
  const before = mailbox.messages.length
  const resent = await post(app, '/login/resend/', { ephemeral_token: step1Token })
  t.equal(resent.status, 200)
  t.same(resent.body, { ephemeral_token: step1Token, detail: resent.body.detail })
  t.type(resent.body.detail, 'string')
  const mail = onlyNewMail(mailbox, before)
  t.equal(recipientOf(mail), user.email)
  const second = codeIn(mail)
  if (first !== second) t.equal((await post(app, '/login/verify/', { ephemeral_token: step1Token, code: first })).status, 401)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1Token, code: second })).status, 200)
})

t.test('resend within the cooldown is 429 with Retry-After and mails nothing', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox)
  const before = mailbox.messages.length
  const { ephemeral_token: step1Token, code } = await startMailedLogin(app, mailbox, user)
  clock.advance(12)
  const early = await post(app, '/login/resend/', { ephemeral_token: step1Token })
  expectError(t, early, 429, 'AUTH_KIT_RESEND_TOO_SOON')
  t.equal(early.headers['retry-after'], '18')
  t.equal(early.body.message, 'A code was sent moments ago. Try again in 18 seconds.', 'the message says how long, in words')
  t.equal(mailbox.messages.length, before + 1)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1Token, code })).status, 200, 'the code sent last still works')
})

t.test('resend does not reset the attempt\'s failure count', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox, { mfa: { maxAttemptsPerToken: 3 } })
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const token = step1.body.ephemeral_token
  for (let i = 0; i < 2; i++) t.equal((await post(app, '/login/verify/', { ephemeral_token: token, code: 'wrong1' })).status, 401)
  clock.advance(30)
  const code = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/login/resend/', { ephemeral_token: token })).status, 200))
  const last = await post(app, '/login/verify/', { ephemeral_token: token, code: otherThan(code) })
  expectError(t, last, 401, 'AUTH_KIT_INVALID_CODE')
  const dead = await post(app, '/login/verify/', { ephemeral_token: token, code })
  expectError(t, dead, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'the third wrong code killed the attempt')
})

t.test('resend does not carry the attempt past its first expiry', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox, { mfa: { ephemeralTokenExpiry: 300 } })
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  clock.advance(290)
  const code = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/login/resend/', { ephemeral_token: step1.body.ephemeral_token })).status, 200))
  clock.advance(10)
  const late = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code })
  expectError(t, late, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
})

t.test('resend for an app login is 400 and mails nothing', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const user = await userWithApp(app, clock)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const before = mailbox.messages.length
  const resent = await post(app, '/login/resend/', { ephemeral_token: step1.body.ephemeral_token })
  expectError(t, resent, 400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE')
  t.equal(mailbox.messages.length, before)
})

t.test('change-method from app to email mails a code that finishes the login', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const user = await userWithAppAndEmail(app, mailbox, clock)
  const before = mailbox.messages.length
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.same(step1.body, { mfa_enabled: true, ephemeral_token: step1.body.ephemeral_token, method: 'app', methods: ['app', 'email'] })
  t.equal(mailbox.messages.length, before, 'an app login mails nothing')
  const changed = await post(app, '/login/change-method/', { ephemeral_token: step1.body.ephemeral_token, new_method: 'email' })
  t.equal(changed.status, 200)
  t.same(changed.body, { ephemeral_token: step1.body.ephemeral_token, method: 'email' })
  const code = codeIn(onlyNewMail(mailbox, before))
  const refused = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(user.secret, clock.now()) })
  t.equal(refused.status, 401, 'the attempt now wants the email code')
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code })).status, 200)
})

t.test('change-method to email within the cooldown mails nothing and the code sent last still works', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const user = await userWithAppAndEmail(app, mailbox, clock)
  const before = mailbox.messages.length
  const code = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 200))
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  const changed = await post(app, '/login/change-method/', { ephemeral_token: step1.body.ephemeral_token, new_method: 'email' })
  t.equal(changed.status, 200)
  t.match(changed.body, { ephemeral_token: step1.body.ephemeral_token, method: 'email' })
  t.match(changed.body.detail, /no new code was sent/i, 'the answer says nothing was sent')
  t.match(changed.body.detail, /latest code sent still works/, 'and that the last code still works')
  t.equal(mailbox.messages.length, before + 1)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code })).status, 200)
})

t.test('change-method from email to app mails nothing and the app code finishes the login', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const user = await userWithAppAndEmail(app, mailbox, clock)
  t.equal((await post(app, '/mfa/primary/', { method: 'email', primary_code: await totp(user.secret, clock.now()) }, user.access)).status, 200)
  clock.advance(30)
  let before = mailbox.messages.length
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(step1.body.method, 'email')
  onlyNewMail(mailbox, before)
  before = mailbox.messages.length
  t.equal((await post(app, '/login/change-method/', { ephemeral_token: step1.body.ephemeral_token, new_method: 'app' })).status, 200)
  t.equal(mailbox.messages.length, before)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(user.secret, clock.now()) })).status, 200)
})

t.test('a backup code of the email method finishes an email login', async (t) => {
  const { app, user } = await appWithEmailUser(t, mailbox)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: user.backupCodes[0] })).status, 200)
})

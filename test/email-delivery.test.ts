import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import { expectError, newUser, post, totp } from './helpers/app.js'
import { type SmtpMode, buildEmailApp, codeIn, emailMethodOf, deadPort, emailApp, onlyNewMail, startSmtp, userWithAppAndEmail, startMailedLogin, codeMailedBy, appWithEmailUser } from './helpers/smtp.js'

const mailbox = await startSmtp()
t.teardown(() => mailbox.close())
t.afterEach(() => { mailbox.mode = 'accept' })

const refusals: SmtpMode[] = ['reject-recipient', 'reject-message']


function isDeliveryFailed (t: Test, res: { status: number, body: any }): void {
  expectError(t, res, 503, 'AUTH_KIT_DELIVERY_FAILED')
  t.equal(res.body.message, 'The code could not be delivered. Try again later.', 'nothing of the mail server\'s answer leaks')
}

for (const mode of refusals) {
  t.test(`a mail server that refuses (${mode}) leaves no method half-created`, async (t) => {
    const { app } = await emailApp(t, mailbox)
    const user = await newUser(app)
    mailbox.mode = mode
    const before = mailbox.messages.length
    isDeliveryFailed(t, await post(app, '/mfa/', { method: 'email' }, user.access))
    t.equal(mailbox.messages.length, before)
    t.match(await emailMethodOf(app, user.access), { is_setup: false, is_active: false, backup_codes_remaining: 0 })

    // Nothing was stored, the cooldown included: setup works at once when the server is back.
    mailbox.mode = 'accept'
    const created = await post(app, '/mfa/', { method: 'email' }, user.access)
    t.equal(created.status, 201)
    t.equal((await post(app, '/mfa/confirm/', { method: 'email', code: codeIn(onlyNewMail(mailbox, before)) }, user.access)).status, 200)
  })
}

t.test('a port where nothing listens gives 503 and leaves no method', async (t) => {
  const app = await buildEmailApp(await deadPort())
  t.teardown(() => app.close())
  const user = await newUser(app)
  isDeliveryFailed(t, await post(app, '/mfa/', { method: 'email' }, user.access))
  t.match(await emailMethodOf(app, user.access), { is_setup: false })
  isDeliveryFailed(t, await post(app, '/mfa/', { method: 'email' }, user.access))
  t.equal((await post(app, '/mfa/', { method: 'app' }, user.access)).status, 201, 'the app method does not need the mail server')
})

t.test('a failed send keeps the previous code working and does not start a cooldown', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox)
  const before = mailbox.messages.length
  const code = await codeMailedBy(mailbox, async () => t.equal((await post(app, '/mfa/send/', { method: 'email' }, user.access)).status, 200))
  clock.advance(30)
  mailbox.mode = 'reject-recipient'
  isDeliveryFailed(t, await post(app, '/mfa/send/', { method: 'email' }, user.access))
  t.equal((await post(app, '/mfa/backup-codes/', { method: 'email', code }, user.access)).status, 200, 'the code sent before still works')
  mailbox.mode = 'accept'
  const retried = await post(app, '/mfa/send/', { method: 'email' }, user.access)
  t.equal(retried.status, 200, 'no 429: the failed send is not counted')
  t.equal(mailbox.messages.length, before + 2)
})

t.test('a failed resend keeps the attempt and its code as they were', async (t) => {
  const { app, clock, user } = await appWithEmailUser(t, mailbox)
  const before = mailbox.messages.length
  const { ephemeral_token: step1Token, code } = await startMailedLogin(app, mailbox, user)
  clock.advance(30)
  mailbox.mode = 'reject-message'
  isDeliveryFailed(t, await post(app, '/login/resend/', { ephemeral_token: step1Token }))
  mailbox.mode = 'accept'
  t.equal(mailbox.messages.length, before + 1)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1Token, code })).status, 200)
})

t.test('login step 1 with email as primary gives 503 when the code cannot be mailed, and works once it can', async (t) => {
  const { app, user } = await appWithEmailUser(t, mailbox)
  mailbox.mode = 'reject-recipient'
  const refused = await post(app, '/login/', { username: user.username, password: user.password })
  isDeliveryFailed(t, refused)
  t.notOk(refused.body.ephemeral_token)
  mailbox.mode = 'accept'
  const before = mailbox.messages.length
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(step1.status, 200)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: codeIn(onlyNewMail(mailbox, before)) })).status, 200)
})

t.test('a failed change-method to email leaves the attempt on its method', async (t) => {
  const { app, clock } = await emailApp(t, mailbox)
  const user = await userWithAppAndEmail(app, mailbox, clock)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(step1.body.method, 'app')
  mailbox.mode = 'reject-recipient'
  isDeliveryFailed(t, await post(app, '/login/change-method/', { ephemeral_token: step1.body.ephemeral_token, new_method: 'email' }))
  mailbox.mode = 'accept'
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(user.secret, clock.now()) })).status, 200)
})

t.test('no code or token appears in the log, and a failed delivery is logged', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const { app, clock, user } = await appWithEmailUser(t, mailbox, {}, { logger: { level: 'trace', stream } })
  const { ephemeral_token: step1Token, code } = await startMailedLogin(app, mailbox, user)
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1Token, code })
  t.equal(step2.status, 200)
  clock.advance(30)
  mailbox.mode = 'reject-message'
  isDeliveryFailed(t, await post(app, '/mfa/send/', { method: 'email' }, step2.body.access))
  const log = lines.join('')
  t.match(log, 'code delivery failed', 'the failure is logged')
  for (const secret of [code, step1Token, step2.body.access, step2.body.refresh, user.access]) {
    t.notMatch(log, secret)
  }
})

// Attack: reading secrets where they were never meant to be — log files, shared
// caches, a copy of the database. Rule 7: no code, secret, token, password or
// QR link in a log line; hashes and ciphertext only at rest; no-store answers.
import t, { type Test } from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import authKitMfa, { AppHandler, authKitRedactPaths, type AuthKitOptions } from '../../src/index.js'
import { SECRET, manualClock, post, get, secretOf, totp } from '../helpers/app.js'
import { logCapture, tempDir } from '../helpers/security.js'
import { recordingSmsHandler } from '../helpers/custom-handlers.js'

type Clock = ReturnType<typeof manualClock>
type Sms = ReturnType<typeof recordingSmsHandler>
type Tap = Test

/** Everything secret a session handled, and every answer it got. */
interface Session {
  secrets: string[]
  /** Six-digit codes: matched as whole numbers, not inside longer digit runs. */
  shortCodes: string[]
  answers: Array<{ url: string, status: number, headers: Record<string, unknown> }>
}

/**
 * register, login, create, confirm, step-up, verify, refresh, backup codes, change
 * method, deactivate, delete, logout, and some failures on the way.
 */
async function fullSession (t: Tap, app: FastifyInstance, clock: Clock, sms: Sms): Promise<Session> {
  const session: Session = { secrets: [], shortCodes: [], answers: [] }
  const call = async (url: string, body: unknown, access?: string) => {
    const res = await post(app, url, body, access)
    session.answers.push({ url, status: res.status, headers: res.headers })
    return res
  }
  const keep = (...values: Array<string | undefined>) => { for (const v of values) if (typeof v === 'string' && v !== '') session.secrets.push(v) }
  const keepBackup = (codes: string[]) => { for (const c of codes) keep(c, c.replace(/-/g, '')) }
  const keepTokens = (body: Record<string, string>) => keep(body.access, body.refresh, body.ephemeral_token)

  const username = 'leak-test-user'
  const password = 'correct horse battery staple'
  keep(password)
  t.equal((await call('/registration/', { username, email: `${username}@example.com`, password })).status, 201)
  await call('/login/', { username, password: 'a wrong password guess' })
  const first = await call('/login/', { username, password })
  keepTokens(first.body)
  const access = first.body.access as string

  const app1 = await call('/mfa/', { method: 'app' }, access)
  t.equal(app1.status, 201)
  const secret = secretOf(app1.body.setup_data.qr_link)
  keep(secret, app1.body.setup_data.qr_link, app1.body.setup_data.qr_code, encodeURIComponent(app1.body.setup_data.qr_link))
  keepBackup(app1.body.backup_codes)
  const confirmCode = await totp(secret, clock.now())
  session.shortCodes.push(confirmCode)
  await call('/mfa/confirm/', { method: 'app', code: '000000' }, access)
  t.equal((await call('/mfa/confirm/', { method: 'app', code: confirmCode }, access)).status, 200)
  // With a method active, the method routes want a token carrying mfa (SPEC section 3, "Methods"):
  // a step-up, whose code and token must not leak either.
  clock.advance(30)
  const stepUpCode = await totp(secret, clock.now())
  session.shortCodes.push(stepUpCode)
  const raised = await call('/login/step-up/', { code: stepUpCode }, access)
  t.equal(raised.status, 200)
  keepTokens(raised.body)
  const mfaAccess = raised.body.access as string

  const sms1 = await call('/mfa/', { method: 'sms' }, mfaAccess)
  t.equal(sms1.status, 201)
  keepBackup(sms1.body.backup_codes)
  session.shortCodes.push(sms.last(first.body.user.id))
  t.equal((await call('/mfa/confirm/', { method: 'sms', code: sms.last(first.body.user.id) }, mfaAccess)).status, 200)
  clock.advance(30)

  const step1 = await call('/login/', { username, password })
  keepTokens(step1.body)
  await call('/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: '123456' })
  const loginCode = await totp(secret, clock.now())
  session.shortCodes.push(loginCode)
  const step2 = await call('/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: loginCode, remember_device: true })
  t.equal(step2.status, 200)
  keepTokens(step2.body)
  // A device token and the password skip the second step: it is as secret as a code.
  t.type(step2.body.device_token, 'string')
  keep(step2.body.device_token)
  const remembered = await call('/login/', { username, password, device_token: step2.body.device_token })
  t.equal(remembered.status, 200)
  t.equal(remembered.body.mfa_enabled, false, 'the remembered device skipped the second step')
  keepTokens(remembered.body)
  t.equal((await get(app, '/user/', step2.body.access)).status, 200)
  t.equal((await get(app, '/mfa/', step2.body.access)).status, 200)

  const refreshed = await call('/token/refresh/', { refresh: step2.body.refresh })
  t.equal(refreshed.status, 200)
  keepTokens(refreshed.body)
  await call('/token/refresh/', { refresh: step2.body.refresh }) // reuse: revokes the family

  clock.advance(30)
  const regenCode = await totp(secret, clock.now())
  session.shortCodes.push(regenCode)
  const regen = await call('/mfa/backup-codes/', { method: 'app', code: regenCode }, mfaAccess)
  t.equal(regen.status, 200)
  keepBackup(regen.body.backup_codes)

  const viaSms = await call('/login/', { username, password })
  keepTokens(viaSms.body)
  t.equal((await call('/login/change-method/', { ephemeral_token: viaSms.body.ephemeral_token, new_method: 'sms' })).status, 200)
  clock.advance(30)
  t.equal((await call('/login/resend/', { ephemeral_token: viaSms.body.ephemeral_token })).status, 200)
  const smsCode = sms.last(first.body.user.id)
  session.shortCodes.push(smsCode)
  const smsDone = await call('/login/verify/', { ephemeral_token: viaSms.body.ephemeral_token, code: smsCode })
  t.equal(smsDone.status, 200)
  keepTokens(smsDone.body)

  const viaBackup = await call('/login/', { username, password })
  keepTokens(viaBackup.body)
  const backupDone = await call('/login/verify/', { ephemeral_token: viaBackup.body.ephemeral_token, code: regen.body.backup_codes[0] })
  t.equal(backupDone.status, 200)
  keepTokens(backupDone.body)

  t.equal((await call('/mfa/deactivate/', { method: 'sms', code: sms1.body.backup_codes[0] }, backupDone.body.access)).status, 200)
  t.equal((await call('/mfa/delete/', { method: 'sms', code: 'wrong-code' }, backupDone.body.access)).status, 204, 'an inactive method is deleted without its code')
  clock.advance(30)
  const primaryCode = await totp(secret, clock.now())
  session.shortCodes.push(primaryCode)
  t.equal((await call('/mfa/primary/', { method: 'app', primary_code: primaryCode }, backupDone.body.access)).status, 200)
  t.equal((await call('/logout/', { refresh: backupDone.body.refresh }, backupDone.body.access)).status, 204)
  return session
}

function findLeaks (text: string, session: Session): string[] {
  const leaks = session.secrets.filter((s) => text.includes(s))
  for (const code of session.shortCodes) {
    if (new RegExp(`(?<![0-9A-Za-z.])${code}(?![0-9A-Za-z])`).test(text)) leaks.push(code)
  }
  return leaks
}

async function appWith (fastifyOptions: Record<string, unknown>, options: Partial<AuthKitOptions>, beforeRegister?: (app: FastifyInstance) => void) {
  const app = Fastify(fastifyOptions)
  beforeRegister?.(app)
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, ...options } as AuthKitOptions)
  await app.ready()
  return app
}

t.test('a whole session logged at trace level writes no code, secret, token, password or QR link', async (t) => {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const logs = logCapture()
  const app = await appWith({ logger: { level: 'trace', stream: logs.stream } }, {
    now: clock.now,
    mfa: { handlers: [AppHandler, sms.Handler] },
    // A failing listener is logged: its message must not carry secrets either.
    onEvent: (event) => { throw new Error(`listener failed on ${event.type}`) },
  })
  t.teardown(() => app.close())
  const session = await fullSession(t, app, clock, sms)
  await app.close()
  t.ok(logs.lines.length > 50, `the logger wrote (${logs.lines.length} lines)`)
  t.ok(logs.parsed().some((l) => l.msg === 'incoming request'), 'requests were logged')
  t.ok(logs.text().includes('onEvent listener failed'), 'listener failures were logged')
  t.ok(session.secrets.length > 30)
  t.same(findLeaks(logs.text(), session), [], 'no secret in any log line')
})

t.test('a host that logs bodies and headers with authKitRedactPaths leaks nothing', async (t) => {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const logs = logCapture()
  const app = await appWith({
    logger: {
      level: 'trace',
      stream: logs.stream,
      redact: authKitRedactPaths,
      serializers: { req: (req: { method: string, url: string, headers: unknown }) => ({ method: req.method, url: req.url, headers: req.headers }) },
    },
  }, { now: clock.now, mfa: { handlers: [AppHandler, sms.Handler] } }, (host) => {
    // What a host that audits traffic might do.
    host.addHook('preHandler', async (request) => {
      request.log.info({ body: request.body, headers: request.headers }, 'request body')
    })
    host.addHook('onSend', async (request, reply, payload) => {
      if (typeof payload === 'string' && /^[[{]/.test(payload)) request.log.info({ response: { statusCode: reply.statusCode, body: JSON.parse(payload) } }, 'response body')
      return payload
    })
  })
  t.teardown(() => app.close())
  const session = await fullSession(t, app, clock, sms)
  await app.close()
  const parsed = logs.parsed()
  t.ok(parsed.some((l) => l.msg === 'request body' && (l.body as { method?: string } | undefined)?.method === 'app'), 'request bodies were logged')
  t.ok(parsed.some((l) => l.msg === 'response body' && (l.response as { body?: { method?: string } } | undefined)?.body?.method === 'app'), 'response bodies were logged')
  t.ok(logs.text().includes('[Redacted]'), 'and redacted')
  t.same(findLeaks(logs.text(), session), [], 'no secret in any log line')

  // Without the list the same host would leak: the test can see a leak.
  const unsafeLogs = logCapture()
  const unsafe = await appWith({ logger: { level: 'info', stream: unsafeLogs.stream } }, { now: clock.now, mfa: { handlers: [AppHandler, recordingSmsHandler().Handler] } }, (host) => {
    host.addHook('preHandler', async (request) => { request.log.info({ body: request.body }, 'request body') })
  })
  t.teardown(() => unsafe.close())
  await post(unsafe, '/login/', { username: 'someone', password: 'a password to leak' })
  t.ok(unsafeLogs.text().includes('a password to leak'))
})

t.test('the redaction list names every secret field of the routes, passkeys included', async (t) => {
  // device_token skips the second step; credential and challenge are a passkey's answer and its challenge.
  for (const field of ['password', 'code', 'primary_code', 'ephemeral_token', 'refresh', 'access', 'backup_codes', 'setup_data', 'device_token', 'credential', 'challenge']) {
    for (const holder of ['req.body', 'request.body', 'response.body', 'body', 'payload']) t.ok(authKitRedactPaths.includes(`${holder}.${field}`), `${holder}.${field}`)
  }
})

t.test('every answer of the plugin sends Cache-Control: no-store', async (t) => {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const app = await appWith({}, { now: clock.now, mfa: { handlers: [AppHandler, sms.Handler] } })
  t.teardown(() => app.close())
  const session = await fullSession(t, app, clock, sms)
  const urls = new Set(session.answers.map((a) => a.url))
  for (const url of ['/login/', '/login/verify/', '/token/refresh/', '/mfa/', '/mfa/backup-codes/', '/registration/']) t.ok(urls.has(url), `${url} was called`)
  for (const answer of session.answers) {
    t.match(answer.headers['cache-control'], /no-store/, `${answer.url} (${answer.status})`)
  }
})

t.test('the database file holds no TOTP secret, backup code, sent code, password or token in clear text', async (t) => {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const dir = tempDir(t)
  const app = await appWith({}, { now: clock.now, database: `sqlite:${join(dir, 'at-rest.db')}`, mfa: { handlers: [AppHandler, sms.Handler] } })
  const session = await fullSession(t, app, clock, sms)
  // One more code sent and left unused: it is in the table now.
  clock.advance(30)
  const pending = await post(app, '/login/', { username: 'leak-test-user', password: 'correct horse battery staple' })
  t.equal(pending.status, 200)
  await app.close()

  const files = readdirSync(dir)
  t.ok(files.includes('at-rest.db'))
  const contents = files.map((f) => readFileSync(join(dir, f)).toString('latin1')).join('\n')
  t.ok(contents.includes('auth_kit_mfa_method'), 'the file was read')
  t.same(findLeaks(contents, session), [], 'nothing secret in the file')
  t.notOk(contents.includes('otpauth://'), 'no QR link')
})

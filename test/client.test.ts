import t, { type Test } from 'tap'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { generate } from 'otplib'
import authKitMfa, { AppHandler, type AuthKitOptions } from '../src/index.js'
import { AuthKitClientError, createAuthKitClient, type AuthKitClientOptions, type Tokens, type TokenStorage } from '../src/client/index.js'
import { SECRET, manualClock, secretOf } from './helpers/app.js'
import { jwtPayload, SecondAppHandler } from './helpers/flows.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const PASSWORD = 'correct horse battery staple'

/** The server's clock: it moves only when a test moves it. */
type Clock = ReturnType<typeof manualClock>

/**
 * The real plugin on a loopback port, and a host route behind
 * requireMfa({ maxAge: 60 }). The plugin runs on a clock the test moves by
 * hand (the `now` option): the client keeps no clock of its own, it only
 * answers the server's 401s, so token expiry and TOTP steps never depend on
 * how fast a loaded machine runs the requests. The TOTP window is wide so a
 * test can use several steps in a row without moving the clock (each step is
 * accepted once, in increasing order).
 */
async function listeningServer (t: Test, options: Partial<AuthKitOptions> = {}) {
  const clock = manualClock()
  const app = Fastify({ logger: false })
  await app.register(authKitMfa, {
    secret: SECRET,
    now: clock.now,
    database: 'sqlite::memory:',
    registration: true,
    docs: false,
    mfa: { handlers: [AppHandler, SecondAppHandler], totpValidWindow: 10 },
    login: { maxFailuresPerClient: 2 },
    ...options,
  } as AuthKitOptions)
  app.post('/api/demo/transfer', { preHandler: app.authKit.requireMfa({ maxAge: 60 }) }, async () => ({ transferred: true }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  return { app, origin, baseUrl: `${origin}/api/auth`, clock }
}

/** A storage hook that records every write. */
function recordingStorage (): TokenStorage & { writes: Array<Tokens | null> } {
  let tokens: Tokens | null = null
  const writes: Array<Tokens | null> = []
  return { writes, get: () => tokens, set: (next) => { writes.push(next); tokens = next } }
}

/** A fetch that records `METHOD /path status` of every request the client sends. */
function recordingFetch (): { fetch: typeof fetch, calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    fetch: async (input, init) => {
      const response = await fetch(input, init)
      calls.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname} ${response.status}`)
      return response
    },
  }
}

/** An authenticator app for an otpauth link, on the server's clock: each code is of a later step than the last (see listeningServer). */
function authenticatorApp (qrLink: string | undefined, clock: Clock) {
  const secret = secretOf(qrLink!)
  const period = 30
  let next = Math.floor(clock.now() / 1000 / period) - 8
  return async (): Promise<string> => {
    next = Math.max(next, Math.floor(clock.now() / 1000 / period) - 8)
    return generate({ secret, period, epoch: (next++) * period })
  }
}

let counter = 0
/** A registered user, logged in one step by a fresh client (password-only token). */
async function loggedInUser (baseUrl: string, extra: Partial<AuthKitClientOptions> = {}) {
  const username = `client${++counter}`
  const storage = recordingStorage()
  const recorder = recordingFetch()
  const client = createAuthKitClient({ baseUrl, storage, fetch: recorder.fetch, ...extra })
  await client.register({ username, email: `${username}@example.com`, password: PASSWORD })
  const login = await client.login({ username, password: PASSWORD })
  if (login.mfa_enabled !== false) throw new Error('expected a one-step login')
  return { username, client, storage, calls: recorder.calls }
}

/** As loggedInUser, then the app method created and confirmed; the token stays password-only. */
async function enrolledUser (baseUrl: string, clock: Clock, extra: Partial<AuthKitClientOptions> = {}) {
  const user = await loggedInUser(baseUrl, extra)
  const created = await user.client.createMethod({ method: 'app' })
  const app = authenticatorApp(created.setup_data.qr_link, clock)
  await user.client.confirmMethod({ method: 'app', code: await app() })
  return { ...user, app, backupCodes: created.backup_codes }
}

/** The error a promise is rejected with, checked to be an AuthKitClientError. */
async function clientError (t: Test, promise: Promise<unknown>): Promise<AuthKitClientError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  t.type(error, AuthKitClientError)
  t.type(error, Error)
  return error as AuthKitClientError
}

t.test('against a listening server', async (t) => {
  const { baseUrl, clock } = await listeningServer(t)

  t.test('register, then a one-step login: the tokens go through the storage hook and authenticate', async (t) => {
    const storage = recordingStorage()
    const client = createAuthKitClient({ baseUrl: `${baseUrl}/`, storage })
    const registered = await client.register({ username: 'alice', email: 'alice@example.com', password: PASSWORD })
    t.match(registered.user, { id: String, username: 'alice', email: 'alice@example.com' })
    t.equal(storage.writes.length, 0, 'registration keeps no tokens')
    const login = await client.login({ username: 'alice', password: PASSWORD })
    t.equal(login.mfa_enabled, false)
    if (login.mfa_enabled !== false || 'mfa_setup_required' in login) throw new Error('expected a one-step login with tokens')
    t.same(storage.writes, [{ access: login.access, refresh: login.refresh, access_expiration: login.access_expiration, refresh_expiration: login.refresh_expiration }])
    const me = await client.user()
    t.equal(me.user.id, registered.user.id)
    t.equal(me.user.username, 'alice')
  })

  t.test('app setup: create, the QR code as SVG text, confirm; the QR of an active method is a 404', async (t) => {
    const { client, storage } = await loggedInUser(baseUrl)
    const created = await client.createMethod({ method: 'app' })
    t.equal(created.method, 'app')
    t.equal(created.backup_codes.length, 10)
    t.match(created.setup_data.qr_link, /^otpauth:\/\/totp\//)
    const svg = await client.qrCode('app')
    t.match(svg, /<svg[\s>]/)
    t.match(await client.listMethods(), [{ name: 'app', is_setup: true, is_active: false }, { name: 'second_app', is_setup: false }])
    const writes = storage.writes.length
    const app = authenticatorApp(created.setup_data.qr_link, clock)
    const confirmed = await client.confirmMethod({ method: 'app', code: await app() })
    t.type(confirmed.detail, 'string')
    t.equal(storage.writes.length, writes, 'a confirm with a full session\'s token keeps the tokens as they are')
    // The token is still the password-only one of before the method: the method routes now want a second factor.
    const raised = await client.stepUp({ code: await app() })
    t.same(storage.writes.at(-1), { ...storage.writes.at(-2), access: raised.access, access_expiration: raised.access_expiration }, 'stepUp keeps the new access token')
    t.same(jwtPayload(raised.access).amr, ['pwd', 'mfa'])
    const error = await clientError(t, client.qrCode('app'))
    t.match(error, { status: 404, code: 'AUTH_KIT_METHOD_NOT_FOUND' })
    t.type(error.message, 'string')
    t.not(error.message, '')
  })

  t.test('login in two steps: verify keeps the tokens; the remembered device and the session are listed', async (t) => {
    const { username, app } = await enrolledUser(baseUrl, clock)
    const storage = recordingStorage()
    const client = createAuthKitClient({ baseUrl, storage })
    const step1 = await client.login({ username, password: PASSWORD })
    if (step1.mfa_enabled !== true) throw new Error('expected a second step')
    t.equal(step1.method, 'app')
    t.same(step1.methods, ['app'])
    t.equal(storage.writes.length, 0, 'step 1 of a two-step login keeps nothing')
    const step2 = await client.verify({ ephemeral_token: step1.ephemeral_token, code: await app(), remember_device: true })
    t.type(step2.device_token, 'string')
    t.same(storage.get(), { access: step2.access, refresh: step2.refresh, access_expiration: step2.access_expiration, refresh_expiration: step2.refresh_expiration })
    t.same(jwtPayload(step2.access).amr, ['pwd', 'mfa'])
    const devices = await client.devices()
    t.equal(devices.length, 1)
    t.equal(devices[0].current, true)
    const sessions = await client.sessions()
    t.equal(sessions.length, 2, 'the one-step login of enrolment and this one')
    t.match(sessions.find((s) => s.current), { amr: ['pwd', 'mfa'] })
    // The remembered device skips the second step.
    const again = await client.login({ username, password: PASSWORD, device_token: step2.device_token })
    t.equal(again.mfa_enabled, false)
  })

  t.test('a method route asked with a password-only token: onStepUp gives a code, step-up is posted, the request is sent once more', async (t) => {
    const asked: unknown[] = []
    let app: (() => Promise<string>) | undefined
    const user = await enrolledUser(baseUrl, clock, { onStepUp: async (info) => { asked.push(info); return { code: await app!() } } })
    app = user.app
    const accessBefore = user.storage.get()!.access
    t.same(jwtPayload(accessBefore).amr, ['pwd'])
    user.calls.length = 0
    const regenerated = await user.client.regenerateBackupCodes({ method: 'app', code: user.backupCodes[0] })
    t.equal(regenerated.backup_codes.length, 10)
    t.same(asked, [{ maxAge: undefined }], 'the gate names no max age')
    t.same(user.calls, ['POST /api/auth/mfa/backup-codes/ 401', 'POST /api/auth/login/step-up/ 200', 'POST /api/auth/mfa/backup-codes/ 200'])
    const after = user.storage.get()!
    t.same(jwtPayload(after.access).amr, ['pwd', 'mfa'], 'the stepped-up access token is kept')
    t.equal(jwtPayload(after.access).sid, jwtPayload(accessBefore).sid, 'of the same session')
    t.type(after.refresh, 'string', 'the refresh token stays')
  })

  t.test('a host route behind requireMfa({ maxAge: 60 }): onStepUp is told max_age from WWW-Authenticate', async (t) => {
    const asked: unknown[] = []
    let app: (() => Promise<string>) | undefined
    const user = await enrolledUser(baseUrl, clock, { onStepUp: async (info) => { asked.push(info); return { code: await app!(), method: 'app' } } })
    app = user.app
    user.calls.length = 0
    const response = await user.client.fetch('/api/demo/transfer', { method: 'POST' })
    t.equal(response.status, 200)
    t.same(await response.json(), { transferred: true })
    t.same(asked, [{ maxAge: 60 }])
    t.same(user.calls, ['POST /api/demo/transfer 401', 'POST /api/auth/login/step-up/ 200', 'POST /api/demo/transfer 200'])
  })

  t.test('onStepUp answering null: the 401 AUTH_KIT_STEP_UP_REQUIRED is thrown and nothing is posted', async (t) => {
    let asked = 0
    const user = await enrolledUser(baseUrl, clock, { onStepUp: async () => { asked++; return null } })
    user.calls.length = 0
    const error = await clientError(t, user.client.regenerateBackupCodes({ method: 'app', code: user.backupCodes[0] }))
    t.match(error, { status: 401, code: 'AUTH_KIT_STEP_UP_REQUIRED' })
    t.equal(asked, 1)
    t.same(user.calls, ['POST /api/auth/mfa/backup-codes/ 401'])
  })

  t.test('a wrong step-up code is thrown as 403 AUTH_KIT_INVALID_CODE, and the callback is not asked again', async (t) => {
    let asked = 0
    const user = await enrolledUser(baseUrl, clock, { onStepUp: async () => { asked++; return { code: '000000' } } })
    const error = await clientError(t, user.client.regenerateBackupCodes({ method: 'app', code: user.backupCodes[0] }))
    t.match(error, { status: 403, code: 'AUTH_KIT_INVALID_CODE' })
    t.equal(asked, 1)
  })

  t.test('a wrong code at verify: AuthKitClientError with the status, code and message the server gave', async (t) => {
    const { username, app } = await enrolledUser(baseUrl, clock)
    const client = createAuthKitClient({ baseUrl })
    const step1 = await client.login({ username, password: PASSWORD })
    if (step1.mfa_enabled !== true) throw new Error('expected a second step')
    const right = await app()
    const error = await clientError(t, client.verify({ ephemeral_token: step1.ephemeral_token, code: right === '000000' ? '111111' : '000000' }))
    t.match(error, { name: 'AuthKitClientError', status: 401, code: 'AUTH_KIT_INVALID_CODE', message: /\S/ })
    t.equal(error.retryAfter, undefined)
    t.equal(client.storage.get(), null)
  })

  t.test('a throttled login: 429 AUTH_KIT_LOGIN_THROTTLED with retryAfter in seconds from Retry-After', async (t) => {
    const { username } = await loggedInUser(baseUrl)
    const client = createAuthKitClient({ baseUrl })
    for (let i = 0; i < 2; i++) {
      t.match(await clientError(t, client.login({ username, password: 'not the password' })), { status: 401, code: 'AUTH_KIT_INVALID_CREDENTIALS' })
    }
    const error = await clientError(t, client.login({ username, password: PASSWORD }))
    t.match(error, { status: 429, code: 'AUTH_KIT_LOGIN_THROTTLED' })
    t.type(error.retryAfter, 'number')
    t.ok(Number.isInteger(error.retryAfter) && error.retryAfter! > 0, `retryAfter ${error.retryAfter}`)
  })

  t.test('a validation error keeps Fastify\'s code', async (t) => {
    const client = createAuthKitClient({ baseUrl })
    t.match(await clientError(t, client.changeMethod({ ephemeral_token: 'x', new_method: 'no_such_method' })), { status: 400, code: 'FST_ERR_VALIDATION' })
  })

  t.test('two active methods: change method, resend and send, primary, deactivate, delete', async (t) => {
    let app: (() => Promise<string>) | undefined
    const user = await enrolledUser(baseUrl, clock, { onStepUp: async () => ({ code: await app!() }) })
    app = user.app
    const { client } = user
    const created = await client.createMethod({ method: 'second_app' }) // raises the session through onStepUp first
    const second = authenticatorApp(created.setup_data.qr_link, clock)
    await client.confirmMethod({ method: 'second_app', code: await second() })
    t.match(await client.listMethods(), [{ name: 'app', is_active: true, is_primary: true }, { name: 'second_app', is_active: true, is_primary: false }])

    const step1 = await client.login({ username: user.username, password: PASSWORD })
    if (step1.mfa_enabled !== true) throw new Error('expected a second step')
    t.same(step1.methods, ['app', 'second_app'])
    t.same(await client.changeMethod({ ephemeral_token: step1.ephemeral_token, new_method: 'second_app' }), { ephemeral_token: step1.ephemeral_token, method: 'second_app' })
    t.match(await clientError(t, client.resend({ ephemeral_token: step1.ephemeral_token })), { status: 400, code: 'AUTH_KIT_METHOD_NOT_DISPATCHABLE' })
    await client.verify({ ephemeral_token: step1.ephemeral_token, code: await second() })
    t.match(await clientError(t, client.send({ method: 'app' })), { status: 400, code: 'AUTH_KIT_METHOD_NOT_DISPATCHABLE' })

    t.type((await client.setPrimary({ method: 'second_app', primary_code: await app() })).detail, 'string')
    t.type((await client.deactivate({ method: 'app', code: await app() })).detail, 'string')
    t.equal(await client.deleteMethod({ method: 'app' }), undefined, 'an inactive method is deleted without a code: 204')
    t.match(await client.listMethods(), [{ name: 'app', is_setup: false }, { name: 'second_app', is_active: true, is_primary: true }])
  })

  t.test('sessions and devices: revoke one, revoke the others, forget a device; logout forgets the tokens and ends the session', async (t) => {
    const { username, app } = await enrolledUser(baseUrl, clock)
    const other = createAuthKitClient({ baseUrl })
    const client = createAuthKitClient({ baseUrl })
    for (const c of [other, client]) {
      const step1 = await c.login({ username, password: PASSWORD })
      if (step1.mfa_enabled !== true) throw new Error('expected a second step')
      await c.verify({ ephemeral_token: step1.ephemeral_token, code: await app(), remember_device: true })
    }
    const sessions = await client.sessions()
    t.equal(sessions.length, 3)
    const otherSession = (await other.sessions()).find((s) => s.current)!
    await client.revokeSession({ id: otherSession.id })
    t.match(await clientError(t, other.user()), { status: 401, code: 'AUTH_KIT_UNAUTHORIZED' }, 'the revoked session fails, and its refresh too')
    t.equal(other.storage.get(), null, 'a refused refresh forgets the tokens')
    t.equal((await client.sessions()).length, 2)
    await client.revokeOtherSessions()
    t.same((await client.sessions()).map((s) => s.current), [true])

    const login = createAuthKitClient({ baseUrl })
    const step1 = await login.login({ username, password: PASSWORD })
    if (step1.mfa_enabled !== true) throw new Error('expected a second step')
    const verified = await login.verify({ ephemeral_token: step1.ephemeral_token, code: await app(), remember_device: true })
    const devices = await login.devices()
    t.equal(devices.length, 1, 'revoke-others forgot the earlier devices')
    await login.revokeDevice({ id: devices[0].id })
    t.same(await login.devices(), [])
    t.equal((await login.login({ username, password: PASSWORD, device_token: verified.device_token })).mfa_enabled, true, 'a forgotten device takes the second step')

    const refresh = client.storage.get()!.refresh!
    await client.logout()
    t.equal(client.storage.get(), null)
    t.match(await clientError(t, client.refresh({ refresh })), { status: 401, code: 'AUTH_KIT_INVALID_REFRESH_TOKEN' })
  })
})

t.test('with one-second access tokens', async (t) => {
  const { baseUrl, clock } = await listeningServer(t, { tokens: { accessTokenExpiry: 1 } } as Partial<AuthKitOptions>)
  // On the server's clock: a token made after this still has its whole second.
  const waitForExpiry = async () => clock.advance(2)

  t.test('an expired access token is refreshed once, the new tokens kept, and the call sent again', async (t) => {
    const { client, storage, calls } = await loggedInUser(baseUrl)
    const before = storage.get()!
    await waitForExpiry()
    calls.length = 0
    const me = await client.user()
    t.type(me.user.id, 'string')
    t.same(calls, ['GET /api/auth/user/ 401', 'POST /api/auth/token/refresh/ 200', 'GET /api/auth/user/ 200'])
    const after = storage.get()!
    t.not(after.refresh, before.refresh, 'the refresh token rotated')
    t.not(after.access, before.access)
  })

  t.test('calls that meet an expired token together share one refresh (a second use would be a reuse)', async (t) => {
    const { client, calls } = await loggedInUser(baseUrl)
    await waitForExpiry()
    calls.length = 0
    const [sessions, devices, me] = await Promise.all([client.sessions(), client.devices(), client.user()])
    t.equal(sessions.length, 1)
    t.same(devices, [])
    t.type(me.user.id, 'string')
    t.equal(calls.filter((c) => c.includes('/token/refresh/')).length, 1)
    t.same(await client.sessions().then((s) => s.length), 1, 'the session is still live: no reuse was detected')
  })

  t.test('a refused refresh is not tried again: the 401 is thrown and the tokens forgotten', async (t) => {
    const { client, storage, calls } = await loggedInUser(baseUrl)
    storage.set({ ...storage.get()!, refresh: 'not-a-refresh-token' })
    await waitForExpiry()
    calls.length = 0
    t.match(await clientError(t, client.user()), { status: 401, code: 'AUTH_KIT_UNAUTHORIZED' })
    t.same(calls, ['GET /api/auth/user/ 401', 'POST /api/auth/token/refresh/ 401'])
    t.equal(storage.get(), null)
  })

  t.test('a 401 after a successful refresh is thrown: one refresh per call, never a loop', async (t) => {
    const first = await loggedInUser(baseUrl)
    const frozen = first.storage.get()!
    // A storage that drops every write: the retry still sends the expired token.
    const recorder = recordingFetch()
    const client = createAuthKitClient({ baseUrl, fetch: recorder.fetch, storage: { get: () => frozen, set: () => {} } })
    await waitForExpiry()
    t.match(await clientError(t, client.user()), { status: 401, code: 'AUTH_KIT_UNAUTHORIZED' })
    t.same(recorder.calls, ['GET /api/auth/user/ 401', 'POST /api/auth/token/refresh/ 200', 'GET /api/auth/user/ 401'])
  })

  t.test('logout after the access token expired sends the refresh token the automatic refresh rotated to', async (t) => {
    const { client, storage, calls } = await loggedInUser(baseUrl)
    await waitForExpiry()
    calls.length = 0
    await client.logout()
    t.same(calls, ['POST /api/auth/logout/ 401', 'POST /api/auth/token/refresh/ 200', 'POST /api/auth/logout/ 204'])
    t.equal(storage.get(), null)
  })
})

t.test('with MFA required: the setup-only login, then confirm, whose full session is kept', async (t) => {
  const { baseUrl, clock } = await listeningServer(t, { mfa: { handlers: [AppHandler], totpValidWindow: 10, required: true } } as Partial<AuthKitOptions>)
  const storage = recordingStorage()
  const client = createAuthKitClient({ baseUrl, storage })
  await client.register({ username: 'carol', email: 'carol@example.com', password: PASSWORD })
  const login = await client.login({ username: 'carol', password: PASSWORD })
  if (login.mfa_enabled !== false || !('mfa_setup_required' in login)) throw new Error('expected a setup-only login')
  t.same(storage.get(), { access: login.access, access_expiration: login.access_expiration }, 'a setup-only token and no refresh token')
  t.match(await clientError(t, client.sessions()), { status: 403, code: 'AUTH_KIT_MFA_SETUP_REQUIRED' })
  const created = await client.createMethod({ method: 'app' })
  const confirmed = await client.confirmMethod({ method: 'app', code: await authenticatorApp(created.setup_data.qr_link, clock)() })
  t.type(confirmed.refresh, 'string')
  t.same(storage.get(), { access: confirmed.access, refresh: confirmed.refresh, access_expiration: confirmed.access_expiration, refresh_expiration: confirmed.refresh_expiration })
  t.equal((await client.sessions()).length, 1, 'the full session works')
})

t.test('the built client imports nothing at run time outside its own folder', async (t) => {
  const outDir = await mkdtemp(join(tmpdir(), 'auth-kit-client-'))
  t.teardown(() => rm(outDir, { recursive: true, force: true }))
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!
  // Emit only: `npx tsc` type-checks the same files.
  const program = ts.createProgram([join(ROOT, 'src/client/index.ts')], { ...config.options, outDir, declaration: false, sourceMap: false, noCheck: true })
  t.same(program.emit().diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [])
  const clientDir = join(outDir, 'src/client')
  const files = (await readdir(clientDir)).filter((f) => f.endsWith('.js'))
  t.ok(files.includes('index.js'))
  // Follow every import of the entry point: each must be a relative file of the client folder.
  const seen = new Set<string>()
  const queue = [join(clientDir, 'index.js')]
  while (queue.length > 0) {
    const file = queue.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    const source = await readFile(file, 'utf8')
    t.notMatch(source, /\brequire\s*\(|\bimport\s*\(/, `${file}: no require or dynamic import`)
    for (const match of source.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm)) {
      const specifier = match[1] ?? match[2]
      const target = resolve(dirname(file), specifier)
      t.ok(specifier.startsWith('./') && dirname(target) === clientDir, `${file.slice(outDir.length)} imports ${specifier}`)
      queue.push(target)
    }
  }
  t.ok(seen.size >= 2, 'the entry point and the files beside it were read')
})

t.test('package.json exports fastify-auth-kit/client from the built files', async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'))
  t.same(pkg.exports['./client'], { types: './dist/src/client/index.d.ts', import: './dist/src/client/index.js' })
})

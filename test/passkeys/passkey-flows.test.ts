import t from 'tap'
import { verifyAuthenticationResponse, verifyRegistrationResponse } from '@simplewebauthn/server'
import { AppHandler, EmailHandler, PasskeyHandler, type AuthKitEvent } from '../../src/index.js'
import { SECRET, buildApp, expectError, get, manualClock, newUser, post, secretOf, totp } from '../helpers/app.js'
import { jwtPayload } from '../helpers/flows.js'
import { SoftwareAuthenticator } from '../helpers/authenticator.js'
import { PASSKEY_ORIGIN, enrolPasskey, loginWithPasskey, sendChallenge, startPasskeyLogin, webauthnOption } from '../helpers/passkeys.js'

// SPEC section 10: a passkey (a WebAuthn credential) as one more method of the
// handler map, driven by a software authenticator whose answers are what a
// browser sends. Every refusal is a wrong credential: the route's
// AUTH_KIT_INVALID_CODE, counted like a wrong code (rules 2 and 5), and the
// challenge it tried stays usable (rule 8).

const EXPIRY = 600
const events: AuthKitEvent[] = []
const clock = manualClock()
const app = await buildApp({
  now: clock.now,
  webauthn: webauthnOption,
  onEvent: (event) => { events.push(event) },
  mfa: { handlers: [AppHandler, PasskeyHandler], maxAttemptsPerToken: 3, lockoutThreshold: 7, ephemeralTokenExpiry: EXPIRY },
})
t.teardown(() => app.close())

/** A user whose primary (and only) method is a passkey; `access` carries mfa. */
async function passkeyUser () {
  const user = await newUser(app)
  return { ...user, ...(await enrolPasskey(app, user.access)) }
}

t.test('the software authenticator answers as a browser would: @simplewebauthn/server itself accepts it', async (t) => {
  const authenticator = new SoftwareAuthenticator(PASSKEY_ORIGIN)
  const challenge = Buffer.alloc(32, 7).toString('base64url')
  const registration = authenticator.register({ challenge, rp: { id: 'localhost', name: 'x' }, pubKeyCredParams: [{ alg: -7 }] })
  const registered = await verifyRegistrationResponse({ response: registration as never, expectedChallenge: challenge, expectedOrigin: PASSKEY_ORIGIN, expectedRPID: 'localhost', requireUserVerification: false })
  t.ok(registered.verified, 'registration verified')
  t.equal(registered.registrationInfo?.fmt, 'none', '"none" attestation')
  t.equal(registered.registrationInfo?.credential.id, authenticator.id)
  const assertion = authenticator.assert({ challenge, rpId: 'localhost' })
  const asserted = await verifyAuthenticationResponse({
    response: assertion as never, expectedChallenge: challenge, expectedOrigin: PASSKEY_ORIGIN, expectedRPID: 'localhost', credential: registered.registrationInfo!.credential, requireUserVerification: false,
  })
  t.ok(asserted.verified, 'assertion verified')
  t.equal(asserted.authenticationInfo.newCounter, 1, 'the counter moved on')
})

t.test('registration: PasskeyHandler needs the webauthn option, and a bad one is named', async (t) => {
  await t.rejects(buildApp({ mfa: { handlers: [AppHandler, PasskeyHandler] } }), { message: /option "webauthn" is required when PasskeyHandler is in mfa\.handlers/ })
  const bad: Array<[unknown, RegExp]> = [
    [{ rpID: 'https://localhost', rpName: 'x', origins: [PASSKEY_ORIGIN] }, /"webauthn\.rpID"/],
    [{ rpID: 'localhost', rpName: '', origins: [PASSKEY_ORIGIN] }, /"webauthn\.rpName"/],
    [{ rpID: 'localhost', rpName: 'x', origins: [] }, /"webauthn\.origins"/],
    [{ rpID: 'example.com', rpName: 'x', origins: ['http://example.com'] }, /"webauthn\.origins".*https/],
    [{ rpID: 'example.com', rpName: 'x', origins: ['https://evil.com'] }, /"webauthn\.origins".*neither/],
    [{ rpID: 'example.com', rpName: 'x', origins: ['https://example.com/login'] }, /"webauthn\.origins".*no path/],
  ]
  for (const [webauthn, message] of bad) {
    await t.rejects(buildApp({ webauthn, mfa: { handlers: [AppHandler, PasskeyHandler] } } as never), { message }, JSON.stringify(webauthn))
  }
  const ok = await buildApp({ webauthn: { rpID: 'example.com', rpName: 'x', origins: ['https://example.com', 'https://app.example.com:8443'] }, mfa: { handlers: [PasskeyHandler] } })
  await ok.close()
  t.pass('an origin of a subdomain, with a port, is fine')
})

t.test('GET /mfa/ lists the passkey, which dispatches (a challenge)', async (t) => {
  const user = await newUser(app)
  const listed = (await get(app, '/mfa/', user.access)).body
  t.same(listed.map((m: { name: string }) => m.name), ['app', 'passkey'])
  t.same(listed[1], { name: 'passkey', display_name: 'Passkey', is_active: false, is_primary: false, is_setup: false, requires_dispatch: true, backup_codes_remaining: 0 })
})

t.test('setup: creation options, then the registration response confirms; only the public key is stored', async (t) => {
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'passkey' }, user.access)
  t.equal(created.status, 201)
  t.equal(created.body.method, 'passkey')
  t.equal(created.body.backup_codes.length, 10, 'backup codes as for any method')
  const options = created.body.setup_data.options
  t.same(Object.keys(created.body.setup_data), ['options'])
  t.match(options, { rp: { id: 'localhost', name: 'Auth Kit Tests' }, user: { name: user.username }, attestation: 'none', timeout: EXPIRY * 1000 })
  t.match(options.challenge, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  t.ok(options.pubKeyCredParams.some((p: { alg: number }) => p.alg === -7), 'ES256 offered')
  t.equal(created.headers['cache-control'], 'no-store')

  const authenticator = new SoftwareAuthenticator(PASSKEY_ORIGIN)
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', code: '123456' }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'a passkey has no code to confirm with')
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', code: created.body.backup_codes[0] }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'nor a backup code, at confirm')
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(options, { origin: 'http://localhost:9999' }) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'another origin')
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(options, { rpID: 'example.com' }) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'another rpID')
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(options, { userPresent: false }) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'no user presence')
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(options, { challenge: Buffer.alloc(32).toString('base64url') }) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'another challenge')
  t.equal((await get(app, '/mfa/', user.access)).body[1].is_active, false, 'nothing activated')

  const confirmed = await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(options) }, user.access)
  t.equal(confirmed.status, 200, 'the refused answers left the setup challenge usable')
  t.same(confirmed.body, { detail: 'Activated MFA method.' })
  t.match((await get(app, '/mfa/', user.access)).body[1], { is_active: true, is_primary: true, backup_codes_remaining: 10 })

  const db = app.authKit.db
  const method = await db.selectFrom('auth_kit_mfa_method').selectAll().where('user_id', '=', user.id).where('name', '=', 'passkey').executeTakeFirstOrThrow()
  t.equal(method.secret, null, 'no secret is kept for a passkey')
  const stored = await db.selectFrom('auth_kit_credential').selectAll().where('user_id', '=', user.id).execute()
  t.equal(stored.length, 1)
  t.equal(stored[0].credential_id, authenticator.id)
  t.equal(Number(stored[0].sign_count), 0)
  t.equal(stored[0].transports, 'internal')
  const cose = Buffer.from(stored[0].public_key, 'base64url')
  t.ok(cose.length > 64 && cose.length < 100, `a COSE EC2 public key (${cose.length} bytes): the private key never leaves the authenticator`)
  t.same(await db.selectFrom('auth_kit_challenge').selectAll().where('user_id', '=', user.id).execute(), [], 'the setup challenge was used up')
  t.ok(events.some((e) => e.type === 'method_confirmed' && e.method === 'passkey' && e.userId === user.id), 'method_confirmed names the passkey')
})

t.test('a registration made in a frame of another site is refused (WebAuthn L3 section 7.1: crossOrigin, topOrigin)', async (t) => {
  const user = await newUser(app)
  const options = (await post(app, '/mfa/', { method: 'passkey' }, user.access)).body.setup_data.options
  const authenticator = new SoftwareAuthenticator(PASSKEY_ORIGIN)
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(options, { framedBy: 'https://evil.example' }) }, user.access), 403, 'AUTH_KIT_INVALID_CODE')
  t.equal((await get(app, '/mfa/', user.access)).body[1].is_active, false, 'nothing activated')
  t.equal((await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(options) }, user.access)).status, 200, 'the same challenge, answered from the site itself, works')
})

t.test('login with a passkey primary: step 1 adds the challenge, verify takes the assertion', async (t) => {
  const user = await passkeyUser()
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(step1.status, 200)
  t.match(step1.body, { mfa_enabled: true, method: 'passkey', methods: ['passkey'] })
  t.match(step1.body.challenge, { rpId: 'localhost', userVerification: 'discouraged', timeout: EXPIRY * 1000, allowCredentials: [{ id: user.authenticator.id, type: 'public-key', transports: ['internal'] }] })
  t.match(step1.body.challenge.challenge, /^[A-Za-z0-9_-]{43}$/)
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, credential: user.authenticator.assert(step1.body.challenge) })
  t.equal(step2.status, 200)
  t.same(jwtPayload(step2.body.access).amr, ['pwd', 'mfa'])
  t.ok(events.some((e) => e.type === 'mfa_verified' && e.method === 'passkey' && e.userId === user.id))
  const stored = await app.authKit.db.selectFrom('auth_kit_credential').select('sign_count').where('user_id', '=', user.id).executeTakeFirstOrThrow()
  t.equal(Number(stored.sign_count), user.authenticator.counter, 'the signature counter is kept')

  const again = await startPasskeyLogin(app, user)
  t.not(again.challenge.challenge, step1.body.challenge.challenge, 'each attempt has its own random challenge')
})

t.test('refusals at login verify, each a wrong credential that leaves the challenge usable', async (t) => {
  const user = await passkeyUser()
  const other = await passkeyUser()
  const refusals: Array<[string, (challenge: any) => unknown]> = [
    ['another origin', (c) => user.authenticator.assert(c, { origin: 'https://evil.example' })],
    ['made in a frame of another site (crossOrigin, topOrigin)', (c) => user.authenticator.assert(c, { framedBy: 'https://evil.example' })],
    ['another rpID', (c) => user.authenticator.assert(c, { rpID: 'example.com' })],
    ['no user presence', (c) => user.authenticator.assert(c, { userPresent: false })],
    ['another user\'s credential', (c) => other.authenticator.assert(c, { ignoreAllowList: true })],
    ['a counter that did not move', (c) => user.authenticator.assert(c, { counter: user.authenticator.counter })],
    ['a counter going backwards', (c) => user.authenticator.assert(c, { counter: Math.max(0, user.authenticator.counter - 1) })],
    ['a signature over another challenge', (c) => user.authenticator.assert({ ...c, challenge: Buffer.alloc(32, 1).toString('base64url') })],
    ['a code, where the passkey has none', () => undefined],
  ]
  for (const [label, answer] of refusals) {
    const step1 = await startPasskeyLogin(app, user)
    const credential = answer(step1.challenge)
    const body = credential === undefined ? { ephemeral_token: step1.ephemeral_token, code: '123456' } : { ephemeral_token: step1.ephemeral_token, credential }
    expectError(t, await post(app, '/login/verify/', body), 401, 'AUTH_KIT_INVALID_CODE', label)
    const right = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: user.authenticator.assert(step1.challenge) })
    t.equal(right.status, 200, `${label}: the same challenge still works with the right answer`)
  }
  t.ok(events.some((e) => e.type === 'mfa_failed' && e.method === 'passkey' && e.userId === user.id), 'mfa_failed names the passkey')
})

t.test('a replayed assertion, and a challenge used once, are refused', async (t) => {
  const user = await passkeyUser()
  const step1 = await startPasskeyLogin(app, user)
  const assertion = user.authenticator.assert(step1.challenge)
  t.equal((await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: assertion })).status, 200)
  const next = await startPasskeyLogin(app, user)
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: next.ephemeral_token, credential: assertion }), 401, 'AUTH_KIT_INVALID_CODE', 'the same assertion at the next attempt')

  // Method routes: one challenge from send, one right answer.
  const challenge = await sendChallenge(app, user.access)
  const first = await post(app, '/login/step-up/', { credential: user.authenticator.assert(challenge) }, user.access)
  t.equal(first.status, 200, 'step-up with the answer to the challenge of send')
  expectError(t, await post(app, '/login/step-up/', { credential: user.authenticator.assert(challenge) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'a fresh assertion over the used challenge')
  const replay = await sendChallenge(app, user.access)
  expectError(t, await post(app, '/login/step-up/', { credential: user.authenticator.assert(challenge, { counter: user.authenticator.counter + 1 }) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'an answer to the old challenge after a new send')
  t.equal((await post(app, '/login/step-up/', { credential: user.authenticator.assert(replay) }, user.access)).status, 200, 'the new challenge works')
})

t.test('a challenge is bound to its user, and to the attempt or route it was made for', async (t) => {
  const user = await passkeyUser()
  const other = await passkeyUser()
  const login = await startPasskeyLogin(app, user)
  const sent = await sendChallenge(app, user.access)
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: login.ephemeral_token, credential: user.authenticator.assert(sent) }), 401, 'AUTH_KIT_INVALID_CODE', 'the challenge of send does not pass login verify')
  expectError(t, await post(app, '/login/step-up/', { credential: user.authenticator.assert(login.challenge) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'the challenge of a login attempt does not pass step-up')
  const second = await startPasskeyLogin(app, user)
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: second.ephemeral_token, credential: user.authenticator.assert(login.challenge) }), 401, 'AUTH_KIT_INVALID_CODE', 'nor another attempt of the same user')
  const otherSent = await sendChallenge(app, other.access)
  expectError(t, await post(app, '/login/step-up/', { credential: user.authenticator.assert(otherSent, { ignoreAllowList: true }) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'nor another user\'s challenge')
  t.equal((await post(app, '/login/verify/', { ephemeral_token: login.ephemeral_token, credential: user.authenticator.assert(login.challenge) })).status, 200, 'each still works where it belongs')
  t.equal((await post(app, '/login/step-up/', { credential: user.authenticator.assert(sent) }, user.access)).status, 200)
})

t.test('a challenge lives ephemeralTokenExpiry', async (t) => {
  const user = await passkeyUser()
  const challenge = await sendChallenge(app, user.access)
  clock.advance(EXPIRY + 1)
  // The access token is older than the challenge's life: log in again to have a live one.
  const fresh = await loginWithPasskey(app, user, user.authenticator)
  expectError(t, await post(app, '/login/step-up/', { credential: user.authenticator.assert(challenge) }, fresh.access), 403, 'AUTH_KIT_INVALID_CODE', 'an expired challenge of send')
  const step1 = await startPasskeyLogin(app, user)
  clock.advance(EXPIRY + 1)
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: user.authenticator.assert(step1.challenge) }), 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'at login, the attempt dies with its challenge')
  t.same(await app.authKit.db.selectFrom('auth_kit_challenge').select('scope').where('user_id', '=', user.id).where('expires_at', '<=', clock.now()).execute().then((rows) => rows.length > 0), true, 'expired challenges wait for the next one to clear them')
  await startPasskeyLogin(app, user)
  const left = await app.authKit.db.selectFrom('auth_kit_challenge').select('expires_at').where('user_id', '=', user.id).execute()
  t.ok(left.every((row) => Number(row.expires_at) > clock.now()), 'a new challenge cleared the expired ones')
})

t.test('wrong credentials count like wrong codes: maxAttemptsPerToken, then the lockout', async (t) => {
  const user = await passkeyUser()
  const wrong = (challenge: any) => user.authenticator.assert(challenge, { origin: 'https://evil.example' })
  const step1 = await startPasskeyLogin(app, user)
  for (let i = 0; i < 3; i++) expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: wrong(step1.challenge) }), 401, 'AUTH_KIT_INVALID_CODE', `wrong credential ${i + 1}`)
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: user.authenticator.assert(step1.challenge) }), 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'three wrong credentials killed the attempt (maxAttemptsPerToken)')

  // Four more, on a method route: seven in a row across attempts and routes lock the user (lockoutThreshold).
  const challenge = await sendChallenge(app, user.access)
  for (let i = 0; i < 3; i++) expectError(t, await post(app, '/login/step-up/', { credential: wrong(challenge) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', `wrong credential ${i + 4} at step-up`)
  const locking = await post(app, '/login/step-up/', { credential: wrong(challenge) }, user.access)
  expectError(t, locking, 403, 'AUTH_KIT_INVALID_CODE', 'the wrong credential that starts the lock gets its own error')
  const locked = await post(app, '/login/step-up/', { credential: user.authenticator.assert(challenge) }, user.access)
  expectError(t, locked, 429, 'AUTH_KIT_TOO_MANY_ATTEMPTS', 'locked: even the right credential')
  t.ok(Number(locked.headers['retry-after']) > 0, 'Retry-After set')
  t.ok(events.some((e) => e.type === 'user_locked' && e.userId === user.id && e.method === 'passkey'))
  await app.authKit.admin.unlock(user.id)
  t.equal((await post(app, '/login/step-up/', { credential: user.authenticator.assert(challenge, { counter: user.authenticator.counter + 1 }) }, user.access)).status, 200, 'the challenge the locked request tried is still usable')
})

t.test('change-method to a passkey adds its challenge; resend replaces it', async (t) => {
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  const secret = secretOf(created.body.setup_data.qr_link)
  t.equal((await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, user.access)).status, 200)
  clock.advance(30)
  const raised = (await post(app, '/login/step-up/', { code: await totp(secret, clock.now()) }, user.access)).body.access
  clock.advance(30)
  const { authenticator } = await enrolPasskey(app, raised)

  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.match(step1.body, { method: 'app', methods: ['app', 'passkey'] })
  t.notOk('challenge' in step1.body, 'an app attempt has no challenge')
  const changed = await post(app, '/login/change-method/', { ephemeral_token: step1.body.ephemeral_token, new_method: 'passkey' })
  t.equal(changed.status, 200)
  t.match(changed.body, { ephemeral_token: step1.body.ephemeral_token, method: 'passkey', challenge: { rpId: 'localhost', allowCredentials: [{ id: authenticator.id }] } })
  const resent = await post(app, '/login/resend/', { ephemeral_token: step1.body.ephemeral_token })
  t.equal(resent.status, 200)
  t.equal(resent.body.detail, 'Answer the challenge with your passkey.')
  t.not(resent.body.challenge.challenge, changed.body.challenge.challenge, 'resend: a new challenge')
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, credential: authenticator.assert(changed.body.challenge) }), 401, 'AUTH_KIT_INVALID_CODE', 'the replaced challenge no longer works')
  const back = await post(app, '/login/change-method/', { ephemeral_token: step1.body.ephemeral_token, new_method: 'app' })
  t.same(back.body, { ephemeral_token: step1.body.ephemeral_token, method: 'app' }, 'to the app: no challenge')
  const again = await post(app, '/login/change-method/', { ephemeral_token: step1.body.ephemeral_token, new_method: 'passkey' })
  const verified = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, credential: authenticator.assert(again.body.challenge) })
  t.equal(verified.status, 200, 'verified with the passkey after changing method')
})

t.test('backup codes work for a passkey as for any method', async (t) => {
  const user = await passkeyUser()
  const step1 = await startPasskeyLogin(app, user)
  const verified = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: user.backupCodes[0] })
  t.equal(verified.status, 200, 'a backup code at a passkey attempt')
  t.ok(events.some((e) => e.type === 'backup_code_used' && e.method === 'passkey' && e.userId === user.id))
  t.equal((await post(app, '/login/step-up/', { code: user.backupCodes[1] }, user.access)).status, 200, 'and at step-up')
  const regenerated = await post(app, '/mfa/backup-codes/', { method: 'passkey', code: user.backupCodes[2] }, user.access)
  t.equal(regenerated.status, 200, 'and on a method route')
  t.equal(regenerated.body.backup_codes.length, 10)
})

t.test('the method routes take credential after POST /mfa/send/', async (t) => {
  const user = await newUser(app)
  const passkey = await enrolPasskey(app, user.access)
  const access = passkey.access
  const sent = await post(app, '/mfa/send/', { method: 'passkey' }, access)
  t.equal(sent.status, 200)
  t.equal(sent.body.detail, 'Answer the challenge with your passkey.')
  t.match(sent.body.challenge, { rpId: 'localhost', allowCredentials: [{ id: passkey.authenticator.id }] })
  t.notOk('rp' in sent.body.challenge, 'request options, not creation options')

  const regenerated = await post(app, '/mfa/backup-codes/', { method: 'passkey', credential: passkey.authenticator.assert(sent.body.challenge) }, access)
  t.equal(regenerated.status, 200, 'backup-codes')
  // A second method, so the passkey can stop being the primary and be deactivated.
  const created = await post(app, '/mfa/', { method: 'app' }, access)
  const secret = secretOf(created.body.setup_data.qr_link)
  t.equal((await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, access)).status, 200)
  clock.advance(30)
  expectError(t, await post(app, '/mfa/primary/', { method: 'app', credential: passkey.authenticator.assert(sent.body.challenge) }, access), 403, 'AUTH_KIT_INVALID_CODE', 'primary: the used challenge')
  const primary = await post(app, '/mfa/primary/', { method: 'app', credential: passkey.authenticator.assert(await sendChallenge(app, access)) }, access)
  t.equal(primary.status, 200, 'primary: credential of the current primary, instead of primary_code')
  const deactivated = await post(app, '/mfa/deactivate/', { method: 'passkey', credential: passkey.authenticator.assert(await sendChallenge(app, access)) }, access)
  t.equal(deactivated.status, 200, 'deactivate')
  t.equal((await get(app, '/mfa/', access)).body[1].is_active, false)

  // Not active: send answers fresh creation options, and confirm takes their registration again.
  const renewed = await post(app, '/mfa/send/', { method: 'passkey' }, access)
  t.equal(renewed.status, 200)
  t.match(renewed.body.challenge, { rp: { id: 'localhost' }, user: { name: user.username } }, 'creation options for a passkey not active')
  const reconfirmed = await post(app, '/mfa/confirm/', { method: 'passkey', credential: passkey.authenticator.register(renewed.body.challenge) }, access)
  t.equal(reconfirmed.status, 200, 'confirmed again with them')

  const deleted = await post(app, '/mfa/delete/', { method: 'passkey', credential: passkey.authenticator.assert(await sendChallenge(app, access)) }, access)
  t.equal(deleted.status, 204, 'delete')
  t.same(await app.authKit.db.selectFrom('auth_kit_credential').selectAll().where('user_id', '=', user.id).execute(), [], 'its credential is gone')
  t.same(await app.authKit.db.selectFrom('auth_kit_challenge').selectAll().where('user_id', '=', user.id).execute(), [], 'and its challenges')
})

t.test('a new setup challenge replaces the old one, and a credential belongs to one account', async (t) => {
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'passkey' }, user.access)
  const renewed = await sendChallenge(app, user.access)
  const authenticator = new SoftwareAuthenticator(PASSKEY_ORIGIN)
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(created.body.setup_data.options) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'the options of POST /mfa/ after send replaced them')

  const owner = await passkeyUser()
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', credential: owner.authenticator.register(renewed as never) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'a credential another user registered')
  t.equal((await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(renewed as never) }, user.access)).status, 200, 'a credential of its own')
})

t.test('credentials of the wrong shape are a 400 that counts nothing; malformed content is a wrong credential, never a 500', async (t) => {
  const user = await passkeyUser()
  const step1 = await startPasskeyLogin(app, user)
  const good = user.authenticator.assert(step1.challenge, { counter: user.authenticator.counter + 1 })
  const shapes: unknown[] = [
    'a string', 42, true, null, [good], {},
    { ...good, type: 'password' },
    { ...good, response: { ...good.response, signature: 123 } },
    { ...good, response: { ...good.response, signature: ['AAAA'] } },
    { ...good, id: 'not base64url!' },
    { ...good, response: { clientDataJSON: good.response.clientDataJSON } },
    { ...good, id: 'A'.repeat(5000) },
  ]
  for (const credential of shapes) {
    expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential }), 400, 'FST_ERR_VALIDATION', JSON.stringify(credential).slice(0, 60))
  }
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: '123456', credential: good }), 400, 'FST_ERR_VALIDATION', 'a code and a credential at once')
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token }), 400, 'FST_ERR_VALIDATION', 'neither')
  const malformed = [
    { ...good, response: { ...good.response, clientDataJSON: Buffer.from('not json').toString('base64url') } },
    { ...good, response: { ...good.response, signature: 'AAAA' } },
    { ...good, response: { ...good.response, authenticatorData: 'AAAA' } },
  ]
  // maxAttemptsPerToken is 3: the 400s above counted nothing, these three count.
  for (const credential of malformed.slice(0, 2)) expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential }), 401, 'AUTH_KIT_INVALID_CODE', 'malformed inside')
  const right = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: good })
  t.equal(right.status, 200, 'the 400s counted nothing, and the refused answers left the challenge usable')

  const sent = await sendChallenge(app, user.access)
  expectError(t, await post(app, '/login/step-up/', { credential: malformed[2] }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'malformed authenticator data at step-up')
  const confirmShape = await post(app, '/mfa/confirm/', { method: 'passkey', credential: user.authenticator.assert(sent) }, user.access)
  expectError(t, confirmShape, 400, 'FST_ERR_VALIDATION', 'confirm wants a registration response, not an assertion')
  const other = await newUser(app)
  await post(app, '/mfa/', { method: 'passkey' }, other.access)
  const registration = new SoftwareAuthenticator(PASSKEY_ORIGIN).register((await sendChallenge(app, other.access)) as never)
  expectError(t, await post(app, '/mfa/confirm/', { method: 'passkey', credential: { ...registration, response: { ...registration.response, attestationObject: 'AAAA' } } }, other.access), 403, 'AUTH_KIT_INVALID_CODE', 'a garbled attestation object')
  t.equal((await post(app, '/mfa/confirm/', { method: 'passkey', credential: registration }, other.access)).status, 200)
})

t.test('a credential for a method that takes codes is a wrong code', async (t) => {
  const user = await passkeyUser()
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  t.equal(created.status, 201)
  const assertion = user.authenticator.assert(await sendChallenge(app, user.access))
  expectError(t, await post(app, '/mfa/confirm/', { method: 'app', credential: assertion }, user.access), 400, 'FST_ERR_VALIDATION', 'confirm: not a registration response')
  const registration = new SoftwareAuthenticator(PASSKEY_ORIGIN).register({ challenge: 'AAAA', rp: { id: 'localhost', name: 'x' }, pubKeyCredParams: [{ alg: -7 }] })
  expectError(t, await post(app, '/mfa/confirm/', { method: 'app', credential: registration }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'the app method has no credential to check')
  expectError(t, await post(app, '/mfa/send/', { method: 'app' }, user.access), 400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE', 'send: the app still dispatches nothing')
})

t.test('the OpenAPI document shows credential and challenge only where a passkey handler is configured', async (t) => {
  const documentOf = async (options: Record<string, unknown>) => {
    const docs = await buildApp({ docs: {}, secret: SECRET, ...options })
    const doc = (await docs.inject({ method: 'GET', url: '/api/docs/json' })).json()
    await docs.close()
    return doc
  }
  const keysIn = (value: unknown, found = new Set<string>()): Set<string> => {
    if (Array.isArray(value)) for (const item of value) keysIn(item, found)
    else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if (key === 'properties' || key === 'required') for (const name of Array.isArray(inner) ? inner : Object.keys(inner as object)) found.add(String(name))
        keysIn(inner, found)
      }
    }
    return found
  }
  const plain = await documentOf({ email: { transport: { jsonTransport: true }, from: 'no-reply@example.com' }, mfa: { handlers: [AppHandler, EmailHandler] } })
  t.notOk(keysIn(plain).has('credential'), 'no credential without a passkey handler')
  t.notOk(keysIn(plain).has('challenge'), 'no challenge without a passkey handler')

  const doc = await documentOf({ webauthn: webauthnOption, mfa: { handlers: [AppHandler, PasskeyHandler] } })
  const { default: SwaggerParser } = await import('@apidevtools/swagger-parser')
  await t.resolves(SwaggerParser.validate(structuredClone(doc)), 'still a valid OpenAPI 3 document')
  const body = (path: string) => doc.paths[`/api/auth${path}`].post.requestBody.content['application/json'].schema
  const answer = (path: string) => doc.paths[`/api/auth${path}`].post.responses['200'].content['application/json'].schema
  for (const path of ['/login/verify/', '/login/step-up/', '/mfa/primary/', '/mfa/deactivate/', '/mfa/delete/', '/mfa/backup-codes/']) {
    t.equal(body(path).properties.credential?.title, 'PasskeyAuthenticationResponse', `${path} takes an assertion as credential`)
  }
  t.equal(body('/mfa/confirm/').properties.credential?.title, 'PasskeyRegistrationResponse', 'confirm takes a registration response')
  t.same(body('/login/verify/').oneOf, [{ required: ['code'] }, { required: ['credential'] }], 'verify: code or credential')
  t.equal(doc.components.schemas.AuthKitLoginMfaStarted.properties.challenge?.title, 'PasskeyRequestOptions', 'step 1 answers a challenge')
  t.equal(answer('/login/change-method/').properties.challenge?.title, 'PasskeyRequestOptions')
  t.equal(answer('/login/resend/').properties.challenge?.title, 'PasskeyRequestOptions')
  t.same(answer('/mfa/send/').properties.challenge?.anyOf.map((s: { title: string }) => s.title), ['PasskeyRequestOptions', 'PasskeyCreationOptions'])
  t.equal(doc.paths['/api/auth/mfa/'].post.responses['201'].content['application/json'].schema.properties.setup_data.oneOf[1].title, 'PasskeySetupData')
  t.notOk(body('/login/').properties.credential, 'step 1 takes no credential')
})

// Attack review of the recent changes (verify without a second read of the
// attempt, rotation reading the built-in user with the token, UUID v7 row ids,
// options that refuse unknown keys). Each test is a fault an attacker, or a
// host's honest mistake, could reach through the contract.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import authKitMfa, { AppHandler, type AuthKitOptions } from '../../src/index.js'
import { SECRET, appOverStore, clockedApp, expectError, get, manualClock, newUser, post, totp } from '../helpers/app.js'
import { jwtPayload, startLogin, userWithAppAndSms } from '../helpers/flows.js'
import { recordingSmsHandler } from '../helpers/custom-handlers.js'

t.test('POST /sessions/revoke/ with another user\'s session id changes nothing, its refresh chain included', async (t) => {
  // A session id is no secret (it is the `sid` of every access token, readable
  // in an expired one; ids are UUID v7 now): only ownership may protect it.
  const { app } = await clockedApp(t)
  const victim = await newUser(app)
  const attacker = await newUser(app)
  t.equal((await post(app, '/sessions/revoke/', { id: jwtPayload(victim.access).sid }, attacker.access)).status, 204)
  t.equal((await get(app, '/user/', victim.access)).status, 200, 'the victim\'s access token works')
  const refreshed = await post(app, '/token/refresh/', { refresh: victim.refresh })
  t.equal(refreshed.status, 200, 'and so does the victim\'s refresh token')
  t.equal((await get(app, '/sessions/', victim.access)).body?.length, 1, 'the victim\'s session is still listed')
})

t.test('POST /devices/revoke/ with another user\'s device id changes nothing', async (t) => {
  const { app, clock } = await clockedApp(t)
  const victim = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'app' }, victim.access)
  const secret = new URL(created.body.setup_data.qr_link).searchParams.get('secret')!
  await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, victim.access)
  clock.advance(30)
  const step1 = await startLogin(app, victim)
  const verified = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(secret, clock.now()), remember_device: true })
  t.equal(verified.status, 200)
  const devices = await get(app, '/devices/', verified.body.access)
  const attacker = await newUser(app)
  t.equal((await post(app, '/devices/revoke/', { id: devices.body[0].id }, attacker.access)).status, 204)
  clock.advance(30)
  const again = await post(app, '/login/', { username: victim.username, password: victim.password, device_token: verified.body.device_token })
  t.equal(again.body.mfa_enabled, false, 'the victim\'s device still skips the second step')
})

t.test('a registration error never repeats the value of a misplaced option (a secret, a mail password)', async (t) => {
  async function registrationError (options: Record<string, unknown>): Promise<string> {
    const app = Fastify({ logger: false })
    try {
      await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:', docs: false, ...options } as unknown as AuthKitOptions)
      await app.ready()
      return ''
    } catch (err) {
      return (err as Error).message
    } finally {
      await app.close().catch(() => {})
    }
  }
  const cases: Array<[string, Record<string, unknown>]> = [
    // nodemailer takes a URL string as a transport: an easy slip is to pass it as `email` itself.
    ['email as an SMTP URL', { email: 'smtps://mailer:hunter2-smtp-password@smtp.example.com' }],
    ['the secret in a group\'s place', { tokens: SECRET }],
    ['the secret in webauthn\'s place', { webauthn: SECRET }],
    ['the secret as a number', { tokens: { accessTokenExpiry: SECRET } }],
    ['the secret as a flag', { registration: SECRET }],
    ['the secret as mfa.required', { mfa: { required: SECRET } }],
  ]
  for (const [label, options] of cases) {
    const message = await registrationError(options)
    t.match(message, /fastify-auth-kit: option "/, `${label}: registration fails, naming the option`)
    t.notMatch(message, /hunter2|test-secret-that/, `${label}: the value is not in the message`)
  }
})

/**
 * An app with AppHandler and an SMS method over a host user store that is only
 * a seam to order two requests deterministically: `runBetween(work)` makes the
 * next `findById` (a login route's read of the attempt's user) run `work`
 * first, so a verify completes between that route's read and its answer.
 */
async function raceableApp (t: Test) {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  let between: (() => Promise<void>) | undefined
  const app = await appOverStore(t, (base) => ({
    findById: async (id) => {
      const run = between
      between = undefined
      if (run !== undefined) await run()
      return base.findById(id)
    },
  }), { now: clock.now, mfa: { handlers: [AppHandler, sms.Handler] } })
  const user = await userWithAppAndSms(app, clock, sms)
  return { app, clock, sms, user, runBetween: (work: () => Promise<void>) => { between = work } }
}

t.test('change-method that loses the race to a successful verify answers 401, not a 200 for a token that is spent', async (t) => {
  const { app, clock, user, runBetween } = await raceableApp(t)
  const step1 = await startLogin(app, user)
  const code = await totp(user.secret, clock.now())
  let verified: { status: number } | undefined
  runBetween(async () => { verified = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code }) })
  const changed = await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'sms' })
  t.equal(verified?.status, 200, 'the verify went through first')
  expectError(t, changed, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'change-method on the now spent token')
})

t.test('resend that loses the race to a successful verify answers 401, not "a new code has been sent" for a spent token', async (t) => {
  const { app, clock, sms, user, runBetween } = await raceableApp(t)
  clock.advance(31)
  const step1 = await startLogin(app, user)
  const changed = await post(app, '/login/change-method/', { ephemeral_token: step1.ephemeral_token, new_method: 'sms' })
  t.equal(changed.status, 200, 'the attempt now waits for an SMS code')
  clock.advance(31)
  const code = sms.last(String(user.id))
  const texted = sms.count(String(user.id))
  let verified: { status: number } | undefined
  runBetween(async () => { verified = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code }) })
  const resent = await post(app, '/login/resend/', { ephemeral_token: step1.ephemeral_token })
  t.equal(verified?.status, 200, 'the verify went through first')
  expectError(t, resent, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'resend on the now spent token')
  t.ok(sms.count(String(user.id)) <= texted + 1, 'at most the one text the race let through')
})

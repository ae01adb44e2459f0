import t from 'tap'
import { Value } from '@sinclair/typebox/value'
import { AppHandler, MfaHandler } from '../src/index.js'
import { buildApp, get, manualClock, newUser, post, secretOf, totp, expectError, clockedApp } from './helpers/app.js'
import { HardwareTokenHandler, recordingSmsHandler, smsApp } from './helpers/custom-handlers.js'

t.test('MfaHandler: the attributes a subclass does not set have the contract defaults', async (t) => {
  class PhoneCallHandler extends MfaHandler {
    static override NAME = 'phone_call'
  }
  t.equal(PhoneCallHandler.DISPLAY_NAME, 'PHONE CALL', 'DISPLAY_NAME: NAME with spaces, upper case')
  t.equal(PhoneCallHandler.REQUIRES_DISPATCH, true, 'REQUIRES_DISPATCH: true')
  t.type(PhoneCallHandler.SETUP_RESPONSE_MESSAGE, 'string')
  t.equal(PhoneCallHandler.TOTP_INTERVAL, undefined, 'TOTP_INTERVAL: the plugin\'s mfa.totpInterval')
  t.equal(PhoneCallHandler.TOTP_VALID_WINDOW, undefined, 'TOTP_VALID_WINDOW: the plugin\'s mfa.totpValidWindow')
  t.equal(PhoneCallHandler.CODE_EXPIRY, undefined, 'CODE_EXPIRY: the plugin\'s mfa.emailCodeExpiry')
  t.ok(Value.Check(PhoneCallHandler.setupDataSchema, { detail: 'sent' }), 'setupDataSchema: {detail: string}')
  t.notOk(Value.Check(PhoneCallHandler.setupDataSchema, {}))

  class ExplicitHandler extends MfaHandler {
    static override NAME = 'explicit'
    static override DISPLAY_NAME = 'Explicit Name'
  }
  t.equal(ExplicitHandler.DISPLAY_NAME, 'Explicit Name', 'a DISPLAY_NAME of its own wins')
  t.equal(PhoneCallHandler.DISPLAY_NAME, 'PHONE CALL', 'and changes no other class')

  const { app } = await clockedApp(t, { mfa: { handlers: [AppHandler, PhoneCallHandler], totpInterval: 45, totpValidWindow: 2, emailCodeExpiry: 420 } })
  const user = await newUser(app)
  t.equal((await post(app, '/mfa/', { method: 'phone_call' }, user.access)).status, 201)
  const handler = await app.authKit.handlerFor(user.id, 'phone_call')
  t.same(handler.settings, { totpInterval: 45, totpValidWindow: 2, codeExpiry: 420 }, 'unset class values follow the plugin options')
})

t.test('a handler the host makes itself says where to get one, and a handler the plugin made shows none of its services', async (t) => {
  class PhoneCallHandler extends MfaHandler {
    static override NAME = 'phone_call'
  }
  const { app } = await clockedApp(t, { mfa: { handlers: [AppHandler, PhoneCallHandler] } })
  const user = await newUser(app)
  t.equal((await post(app, '/mfa/', { method: 'phone_call' }, user.access)).status, 201)
  const made = await app.authKit.handlerFor(user.id, 'phone_call')
  t.same(Object.keys(made).sort(), ['method', 'user'], 'own properties: user and method only')
  t.same(Object.getOwnPropertySymbols(made), [], 'no symbol-keyed properties either')
  const own = new PhoneCallHandler(made.user, made.method)
  t.throws(() => own.settings, /PhoneCallHandler was not made by the plugin; get one from app\.authKit\.handlerFor\(\)/)
})

t.test('a dispatching handler, through app.authKit.handlerFor', async (t) => {
  const { app, clock, sms } = await smsApp(t)
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'sms' }, user.access)
  t.equal(created.status, 201)

  t.test('this.user is the user store\'s record and this.method the method\'s state', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    t.equal(String(handler.user.id), user.id)
    t.equal(handler.user.username, user.username)
    t.same(handler.method, { name: 'sms', isActive: false, isPrimary: false })
    t.ok(handler instanceof sms.Handler)
  })

  t.test('getOtpCode() issues a fresh six-digit code each time', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    const codes = new Set<string>()
    for (let i = 0; i < 5; i++) {
      const code = await handler.getOtpCode()
      t.match(code, /^[0-9]{6}$/)
      codes.add(code)
    }
    t.ok(codes.size >= 4, 'codes are random, not one code repeated')
  })

  t.test('validateCode() takes the latest code once', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    const code = await handler.getOtpCode()
    t.equal(await handler.validateCode(code), true)
    t.equal(await handler.validateCode(code), false, 'a used code never works again')
  })

  t.test('only the latest code issued works', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    const earlier = await handler.getOtpCode()
    let latest = await handler.getOtpCode()
    while (latest === earlier) latest = await handler.getOtpCode()
    t.equal(await handler.validateCode(earlier), false, 'the earlier code stopped working')
    t.equal(await handler.validateCode(latest), true)
  })

  t.test('wrong and malformed codes are refused', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    const code = await handler.getOtpCode()
    const wrong = code === '000000' ? '000001' : '000000'
    // 0.2 (SPEC rule 3, section 12): code input ignores spaces, dashes and
    // surrounding white space, so `${code} ` is no longer a malformed code.
    for (const input of [wrong, '', 'abcdef', '12345', '1234567']) {
      t.equal(await handler.validateCode(input), false, JSON.stringify(input))
    }
    t.equal(await handler.validateCode(code), true, 'a refused attempt does not use the code up')
    const next = await handler.getOtpCode()
    t.equal(await handler.validateCode(` ${next.slice(0, 3)} ${next.slice(3)} `), true, 'spaces in and around a code are ignored')
  })

  t.test('a code is stored only as a hash', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    const code = await handler.getOtpCode()
    const rows = await app.authKit.db.selectFrom('auth_kit_sent_code').selectAll().execute()
    t.ok(rows.length > 0)
    t.notMatch(JSON.stringify(rows), code)
  })

  t.test('a sent code expires after mfa.emailCodeExpiry when the class sets no CODE_EXPIRY', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    t.equal(handler.settings.codeExpiry, 600)
    const kept = await handler.getOtpCode()
    clock.advance(599)
    t.equal(await handler.validateCode(kept), true, 'alive at 599 s')
    const expired = await handler.getOtpCode()
    clock.advance(600)
    t.equal(await handler.validateCode(expired), false, 'dead at 600 s')
  })

  t.test('validateBackupCode() takes each backup code once', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    const [first, second] = created.body.backup_codes as string[]
    t.equal(await handler.validateBackupCode(first), true)
    t.equal(await handler.validateBackupCode(first), false, 'a used backup code never works again')
    t.equal(await handler.validateBackupCode(second.toLowerCase().replace(/-/g, ' ')), true, 'case, spaces and dashes do not matter')
    t.equal(await handler.validateBackupCode('0000-0000-0000-0000'), false)
  })

  t.test('validateCode() takes the own code, then a backup code', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    const backup = (created.body.backup_codes as string[])[2]
    t.equal(await handler.validateCode(backup), true)
    t.equal(await handler.validateCode(backup), false)
  })

  t.test('sendCode() delivers a code that validates', async (t) => {
    const handler = await app.authKit.handlerFor(user.id, 'sms')
    const before = sms.texts.length
    await handler.sendCode()
    t.equal(sms.texts.length, before + 1)
    t.equal(await handler.validateCode(sms.lastCode()), true)
  })

  t.test('handlerFor() refuses a method the user has not set up', async (t) => {
    await t.rejects(app.authKit.handlerFor(user.id, 'app'), { code: 'AUTH_KIT_METHOD_NOT_FOUND' })
  })
})

t.test('a custom CODE_EXPIRY takes effect', async (t) => {
  const { app, clock, sms } = await smsApp(t, { codeExpiry: 120, mfa: { emailCodeExpiry: 600 } })
  const user = await newUser(app)
  t.equal((await post(app, '/mfa/', { method: 'sms' }, user.access)).status, 201)
  const handler = await app.authKit.handlerFor(user.id, 'sms')
  t.equal(handler.settings.codeExpiry, 120)

  const kept = await handler.getOtpCode()
  clock.advance(119)
  t.equal(await handler.validateCode(kept), true, 'alive at 119 s')

  // Through the routes too: the code texted at setup dies at CODE_EXPIRY, not at mfa.emailCodeExpiry.
  clock.advance(30)
  t.equal((await post(app, '/mfa/send/', { method: 'sms' }, user.access)).status, 200)
  const texted = sms.lastCode()
  clock.advance(120)
  const late = await post(app, '/mfa/confirm/', { method: 'sms', code: texted }, user.access)
  expectError(t, late, 403, 'AUTH_KIT_INVALID_CODE', 'dead at 120 s')
})

t.test('a non-dispatching (TOTP) custom handler', async (t) => {
  const clock = manualClock() // starts on a 60-second boundary
  // The SMS-like method's {detail} comes first: setup_data {detail, provisioning_link} fits it too, and must still keep both fields.
  const app = await buildApp({ now: clock.now, mfa: { handlers: [AppHandler, recordingSmsHandler().Handler, HardwareTokenHandler] } })
  t.teardown(() => app.close())
  const user = await newUser(app)

  t.test('send is 400 AUTH_KIT_METHOD_NOT_DISPATCHABLE even before the method is set up', async (t) => {
    const before = await post(app, '/mfa/send/', { method: 'hardware_token' }, user.access)
    expectError(t, before, 400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE')
  })

  const created = await post(app, '/mfa/', { method: 'hardware_token' }, user.access)
  t.equal(created.status, 201)
  t.same(Object.keys(created.body.setup_data).sort(), ['detail', 'provisioning_link'], 'setup_data has the handler\'s own shape')
  t.equal(created.body.setup_data.detail, HardwareTokenHandler.SETUP_RESPONSE_MESSAGE)
  const link = new URL(created.body.setup_data.provisioning_link)
  t.equal(link.protocol, 'otpauth:')
  t.equal(link.searchParams.get('period'), '60', 'the link carries TOTP_INTERVAL')
  const secret = secretOf(created.body.setup_data.provisioning_link)

  t.test('a custom TOTP_INTERVAL and TOTP_VALID_WINDOW take effect', async (t) => {
    const start = clock.now()
    const code = await totp(secret, start, 60)
    const thirtySecondCode = await totp(secret, start, 30)
    t.not(code, thirtySecondCode, 'the 60- and 30-second codes differ at this instant')
    const handler = await app.authKit.handlerFor(user.id, 'hardware_token')
    t.same(handler.settings, { totpInterval: 60, totpValidWindow: 0, codeExpiry: 600 })
    t.equal(await handler.getOtpCode(), code, 'getOtpCode() gives the current 60-second step')
    t.equal(await handler.validateCode(thirtySecondCode), false, 'a code of a 30-second step is refused')

    clock.advance(60)
    t.equal(await handler.validateCode(code), false, 'with TOTP_VALID_WINDOW 0 the previous step is refused')
    clock.set(start + 59_000)
    const wrongConfirm = await post(app, '/mfa/confirm/', { method: 'hardware_token', code: thirtySecondCode }, user.access)
    t.equal(wrongConfirm.status, 403)
    const confirmed = await post(app, '/mfa/confirm/', { method: 'hardware_token', code }, user.access)
    t.equal(confirmed.status, 200, 'the same code is still good 59 s later: one 60-second step')
    t.equal(await handler.validateCode(code), false, 'an accepted step is never accepted again')
  })

  t.test('a TOTP method logs in with its code; resend is 400 AUTH_KIT_METHOD_NOT_DISPATCHABLE', async (t) => {
    clock.advance(60)
    const step1 = await post(app, '/login/', { username: user.username, password: user.password })
    t.same(step1.body, { mfa_enabled: true, ephemeral_token: step1.body.ephemeral_token, method: 'hardware_token', methods: ['hardware_token'] })
    const resend = await post(app, '/login/resend/', { ephemeral_token: step1.body.ephemeral_token })
    expectError(t, resend, 400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE')
    const send = await post(app, '/mfa/send/', { method: 'hardware_token' }, user.access)
    expectError(t, send, 400, 'AUTH_KIT_METHOD_NOT_DISPATCHABLE')
    const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(secret, clock.now(), 60) })
    t.equal(step2.status, 200)
    t.ok(step2.body.access)
  })
})

t.test('full flow with an SMS-like method: create, confirm, login, verify, backup code', async (t) => {
  const { app, clock, sms } = await smsApp(t)
  const user = await newUser(app)

  const created = await post(app, '/mfa/', { method: 'sms' }, user.access)
  t.equal(created.status, 201)
  t.equal(created.body.method, 'sms')
  t.same(created.body.setup_data, { detail: 'SMS verification code has been sent to your phone.' }, 'default initializeMethod(): {detail: SETUP_RESPONSE_MESSAGE}')
  t.equal(created.body.backup_codes.length, 10)
  t.equal(created.headers['cache-control'], 'no-store')
  t.equal(sms.texts.length, 1, 'setting the method up texted a code')
  t.equal(sms.texts[0].user.username, user.username, 'to the user in this.user')

  const listed = await get(app, '/mfa/', user.access)
  t.same(listed.body.find((m: { name: string }) => m.name === 'sms'), {
    name: 'sms', display_name: 'SMS Authentication', is_active: false, is_primary: false, is_setup: true, requires_dispatch: true, backup_codes_remaining: 10,
  })

  const confirmed = await post(app, '/mfa/confirm/', { method: 'sms', code: sms.lastCode() }, user.access)
  t.equal(confirmed.status, 200)
  const handler = await app.authKit.handlerFor(user.id, 'sms')
  t.same(handler.method, { name: 'sms', isActive: true, isPrimary: true }, 'the first active method is primary')

  clock.advance(30) // past the resend cooldown
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.same(step1.body, { mfa_enabled: true, ephemeral_token: step1.body.ephemeral_token, method: 'sms', methods: ['sms'] })
  t.equal(sms.texts.length, 2, 'login step 1 texted a code')
  const wrong = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: sms.lastCode() === '111111' ? '222222' : '111111' })
  expectError(t, wrong, 401, 'AUTH_KIT_INVALID_CODE')
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: sms.lastCode() })
  t.equal(step2.status, 200)
  t.ok(step2.body.access)

  clock.advance(30)
  const again = await post(app, '/login/', { username: user.username, password: user.password })
  const backup = created.body.backup_codes[0]
  const byBackup = await post(app, '/login/verify/', { ephemeral_token: again.body.ephemeral_token, code: backup })
  t.equal(byBackup.status, 200, 'a backup code finishes the login')

  clock.advance(30)
  const third = await post(app, '/login/', { username: user.username, password: user.password })
  const reused = await post(app, '/login/verify/', { ephemeral_token: third.body.ephemeral_token, code: backup })
  t.equal(reused.status, 401, 'a used backup code never works again')

  const resent = await post(app, '/login/resend/', { ephemeral_token: third.body.ephemeral_token })
  expectError(t, resent, 429, 'AUTH_KIT_RESEND_TOO_SOON', 'resend keeps the cooldown')
  clock.advance(30)
  const texted = sms.texts.length
  t.equal((await post(app, '/login/resend/', { ephemeral_token: third.body.ephemeral_token })).status, 200)
  t.equal(sms.texts.length, texted + 1, 'resend texted a new code')
  const verified = await post(app, '/login/verify/', { ephemeral_token: third.body.ephemeral_token, code: sms.lastCode() })
  t.equal(verified.status, 200)

  clock.advance(30)
  // The method routes want a token from a second-factor login now that sms is active (SPEC section 3, "Methods").
  t.equal((await post(app, '/mfa/send/', { method: 'sms' }, verified.body.access)).status, 200)
  const regenerated = await post(app, '/mfa/backup-codes/', { method: 'sms', code: sms.lastCode() }, verified.body.access)
  t.equal(regenerated.status, 200, 'the texted code works on a method route')
  t.equal(regenerated.body.backup_codes.length, 10)
})

t.test('the routes use a handler\'s own validateOtpCode()', async (t) => {
  const sms = recordingSmsHandler()
  let phoneStillVerified = false
  class CheckedTextHandler extends sms.Handler {
    override async validateOtpCode (code: string): Promise<boolean> {
      return phoneStillVerified && await super.validateOtpCode(code)
    }
  }
  const app = await buildApp({ mfa: { handlers: [AppHandler, CheckedTextHandler] } })
  t.teardown(() => app.close())
  const user = await newUser(app)
  t.equal((await post(app, '/mfa/', { method: 'sms' }, user.access)).status, 201)
  const refused = await post(app, '/mfa/confirm/', { method: 'sms', code: sms.lastCode() }, user.access)
  t.equal(refused.status, 403, 'the extra check refuses the right code')
  phoneStillVerified = true
  t.equal((await post(app, '/mfa/confirm/', { method: 'sms', code: sms.lastCode() }, user.access)).status, 200)
})

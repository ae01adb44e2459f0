import t, { type Test } from 'tap'
import { build } from 'esbuild'
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildDemo } from '../examples/app.js'
import { SWAGGER_UI_THEME } from '../src/docs.js'
import { manualClock, SECRET, totp } from './helpers/app.js'
import { codeIn, smtpTransport, startSmtp, type Mailbox } from './helpers/smtp.js'
import { demoPage, expectOnlyProvokedErrors, inChromium, recordErrorAnswers, ROOT, screenshotDir, sees, testInChromium } from './helpers/browser.js'

// SPEC section 11, "The page": the demo's page at `/`, used the way a person
// uses it, only by clicking and typing, in Debian's chromium driven by
// playwright-core. The app is the one `npm start` serves (examples/app.ts),
// with an in-memory database, a clock the test moves, and mail going to a real
// SMTP server on loopback, from which the test reads the codes. The test plays
// the authenticator app. No error may reach the browser console, and no request
// may fail. UPDATE_SCREENSHOTS=1 writes the README's screenshots to docs/screenshots/.
testInChromium(t, 'the demo page, only by clicking and typing', 'the page\'s browser test', walkThePage)

const PASSWORD = 'correct horse battery staple'

async function walkThePage (t: Test): Promise<void> {
  const shots = screenshotDir(t)

  const mailbox = await startSmtp()
  t.teardown(() => mailbox.close())
  const clock = manualClock(Date.now())
  const { app } = await buildDemo({ secret: SECRET, database: 'sqlite::memory:', email: { transport: smtpTransport(mailbox.port) }, now: clock.now })
  t.teardown(() => app.close())
  const errorCodes = recordErrorAnswers(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`

  const { page, log, newPage } = await inChromium(t, {
    context: { viewport: { width: 1000, height: 820 }, acceptDownloads: true },
    async prepare (context, page) {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
      // The page's clock, for its Retry-After countdown: it runs as usual until the test jumps it.
      await page.clock.install()
    },
  })
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`) })

  /** The latest code mail's code. */
  function mailedCode (box: Mailbox): string {
    const mails = box.messages.filter((mail) => /verification code/.test(mail.subject ?? ''))
    return codeIn(mails[mails.length - 1])
  }
  let secret = ''
  /** The authenticator app: the code of the next 30-second step (a step is accepted once). */
  async function appCode (): Promise<string> {
    clock.advance(30)
    return totp(secret, clock.now())
  }
  const { status, signedInHeading, row, dialog, logIn } = demoPage(page, 'alice', PASSWORD)
  const loginForm = page.locator('#login-form')
  const stepForm = page.locator('#verify-form')
  async function logOut (t: Test): Promise<void> {
    await page.getByRole('button', { name: 'Log out', exact: true }).click()
    await sees(t, status, /Logged out/, 'logged out')
  }

  await t.test('the page loads under a policy with no inline script, every field labelled', async (t) => {
    const answer = await page.goto(`${base}/`)
    const policy = answer?.headers()['content-security-policy'] ?? ''
    t.match(policy, /script-src 'self'(;|$)/, 'scripts only from the server')
    t.notMatch(policy, /unsafe-inline|unsafe-eval/, 'no inline script, no eval')
    await loginForm.getByRole('heading', { name: 'Log in' }).waitFor()
    const unlabelled = await page.locator('input, select').evaluateAll((fields) => fields.filter((f) => (f as HTMLInputElement).labels?.length === 0).map((f) => f.id))
    t.same(unlabelled, [], 'every input and select has a label')
    await shot('page-log-in')
  })

  await t.test('register: the server\'s message shows for a refused password, then the account is made', async (t) => {
    const form = page.locator('#register-form')
    await form.getByLabel('Username').fill('alice')
    await form.getByLabel('Email').fill('alice@example.com')
    await form.getByLabel('Password').fill('short')
    await form.getByRole('button', { name: 'Create account' }).click()
    await sees(t, form.getByRole('alert'), /password.*8.*FST_ERR_VALIDATION/, 'the validation message of the server, with its code')
    await form.getByLabel('Password').fill(PASSWORD)
    await form.getByRole('button', { name: 'Create account' }).click()
    await sees(t, status, /Account alice created/, 'registered')
    t.equal(await page.getByLabel('Username or email').inputValue(), 'alice', 'the login form is filled in')
  })

  await t.test('log in with the password alone while there is no method', async (t) => {
    await logIn()
    await signedInHeading.waitFor()
    await page.locator('#methods tr').nth(3).waitFor() // the list follows the heading
    t.equal(await page.locator('#methods tr').count(), 4, 'the four methods of the demo (passkeys: test/page-passkey.browser.test.ts)')
    await sees(t, row('Authenticator App'), /Not set up/, 'nothing set up yet')
  })

  let backupCodes: string[] = []
  await t.test('set up the authenticator app: QR image, key, backup codes to copy and download, confirm', async (t) => {
    await page.getByRole('button', { name: 'Set up Authenticator App' }).click()
    const qr = page.getByRole('img', { name: 'QR code of your authenticator app link' })
    await qr.waitFor()
    t.ok(await qr.evaluate((img: HTMLImageElement) => img.decode().then(() => img.naturalWidth > 0)), 'the QR image loaded')
    secret = (await page.locator('#setup-key').textContent() ?? '').replace(/\s/g, '')
    t.match(secret, /^[A-Z2-7]{16,}$/, 'the key is shown, base32')
    t.equal(new URL(await page.getByRole('link', { name: /Open in an authenticator app/ }).getAttribute('href') ?? '').searchParams.get('secret'), secret, 'the otpauth link holds the same key')
    backupCodes = (await page.locator('#backup-codes li').allTextContents()).map((code) => code.trim())
    t.equal(backupCodes.length, 10, 'ten backup codes')
    await page.locator('#setup').scrollIntoViewIfNeeded()
    await shot('page-setup-app')

    await page.getByRole('button', { name: 'Copy' }).click()
    await sees(t, page.locator('#backup-status'), /Copied/, 'copied')
    const copied = await page.evaluate(() => navigator.clipboard.readText())
    t.ok(backupCodes.every((code) => copied.includes(code)), 'the clipboard holds every code')
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download as .txt' }).click()])
    t.equal(download.suggestedFilename(), 'backup-codes-app.txt')
    const file = await readFile(await download.path(), 'utf8')
    t.ok(backupCodes.every((code) => file.includes(code)), 'the text file holds every code')

    const confirm = page.locator('#confirm-form')
    await confirm.getByLabel('Code of Authenticator App').fill('000000')
    await confirm.getByRole('button', { name: 'Confirm' }).click()
    await sees(t, confirm.getByRole('alert'), /AUTH_KIT_INVALID_CODE/, 'a wrong code: the server says so')
    await confirm.getByLabel('Code of Authenticator App').fill(await totp(secret, clock.now()))
    await confirm.getByRole('button', { name: 'Confirm' }).click()
    await sees(t, row('Authenticator App'), /Active, primary/, 'confirmed: active and primary')
    await page.getByRole('button', { name: 'I have saved them' }).click()
    t.ok(await page.locator('#backup').isHidden(), 'the codes are put away')
  })

  await t.test('set up email: the password-only session is asked to step up first', async (t) => {
    await page.getByRole('button', { name: 'Set up Email' }).click()
    await dialog.getByRole('heading', { name: 'Confirm it is you' }).waitFor()
    t.equal(await dialog.getByLabel('Method').inputValue(), 'app', 'the primary is offered first')
    await dialog.getByLabel('Code or backup code').fill(await appCode())
    await dialog.getByLabel('Code or backup code').press('Enter')
    await sees(t, page.locator('#setup-detail'), /has been sent/, 'after the step-up, the setup goes on and a code is mailed')
    await page.locator('#confirm-form').getByLabel('Code of Email').fill(mailedCode(mailbox))
    await page.locator('#confirm-form').getByRole('button', { name: 'Confirm' }).click()
    await sees(t, row('Email'), /Active/, 'email is active')
    t.notMatch(await row('Email').textContent(), /Active, primary/, 'and not primary')
    await page.getByRole('button', { name: 'I have saved them' }).click()
  })

  await t.test('log in with two steps and remember the device; the next login skips the second step', async (t) => {
    await logOut(t)
    await logIn()
    await stepForm.getByLabel('Code of Authenticator App').waitFor()
    t.ok(await page.getByRole('button', { name: 'Use Email instead' }).isVisible(), 'the other method is offered')
    t.ok(await page.locator('#resend').isHidden(), 'the app sends nothing: no resend')
    await stepForm.getByLabel('Code of Authenticator App').fill(await appCode())
    await stepForm.getByLabel('Remember this device').check()
    await shot('page-second-step')
    await stepForm.getByRole('button', { name: 'Verify' }).click()
    await signedInHeading.waitFor()
    await sees(t, page.locator('#devices'), /since/, 'the device is listed')

    await logOut(t)
    await logIn()
    await signedInHeading.waitFor()
    t.ok(await stepForm.isHidden(), 'no second step on a remembered device')
  })

  await t.test('forget the device; log in with a backup code', async (t) => {
    await page.locator('#devices').getByRole('button', { name: /^Forget/ }).click()
    await sees(t, page.locator('#devices'), /None/, 'no device remembered')
    await logOut(t)
    await logIn()
    await page.getByRole('button', { name: 'Use a backup code' }).click()
    await stepForm.getByLabel('Backup code').fill(backupCodes[0])
    await stepForm.getByRole('button', { name: 'Verify' }).click()
    await signedInHeading.waitFor()
    await sees(t, row('Authenticator App'), /Active, primary\s*9(?!\d)/, 'one backup code fewer')
  })

  await t.test('change method to email at the second step; resend shows the Retry-After countdown', async (t) => {
    await logOut(t)
    await logIn()
    await page.getByRole('button', { name: 'Use Email instead' }).click()
    await sees(t, page.locator('#verify-hint'), /sent for Email/, 'a code was sent')
    const resend = page.getByRole('button', { name: 'Send a new code' })
    await resend.click()
    const alert = stepForm.getByRole('alert')
    await sees(t, alert, /AUTH_KIT_RESEND_TOO_SOON.*Try again in \d+ s\./, 'the server\'s 429 and a countdown')
    t.ok(await resend.isDisabled(), 'resend waits for the countdown')
    await shot('page-countdown')
    clock.advance(31)
    await page.clock.fastForward(31_000)
    await sees(t, alert, /You can try again now/, 'the countdown ran out')
    t.ok(await resend.isEnabled(), 'resend is back')
    const before = mailbox.messages.length
    await resend.click()
    await sees(t, page.locator('#verify-hint'), /A new code has been sent/, 'resent')
    t.ok(mailbox.messages.length > before, 'a new mail came')
    await stepForm.getByLabel('Code of Email').fill(mailedCode(mailbox))
    await stepForm.getByRole('button', { name: 'Verify' }).click()
    await signedInHeading.waitFor()
  })

  await t.test('make email primary, with a code of the current primary', async (t) => {
    await page.getByRole('button', { name: 'Make Email primary' }).click()
    await dialog.getByRole('heading', { name: 'Make Email primary' }).waitFor()
    t.match(await dialog.textContent(), /current primary method, Authenticator App/)
    await dialog.getByLabel('Code or backup code').fill(await appCode())
    await dialog.getByRole('button', { name: 'OK' }).click()
    await sees(t, row('Email'), /Active, primary/, 'email is primary')
    await sees(t, row('Authenticator App'), /Active(?!, primary)/, 'the app is no longer primary')
  })

  await t.test('deactivate the app with its code, then delete it without one', async (t) => {
    await page.getByRole('button', { name: 'Deactivate Authenticator App' }).click()
    await dialog.getByLabel('Code or backup code').fill(await appCode())
    await dialog.getByRole('button', { name: 'OK' }).click()
    await sees(t, row('Authenticator App'), /Not active/, 'deactivated')
    await page.getByRole('button', { name: 'Confirm Authenticator App' }).click()
    const qr = page.getByRole('img', { name: 'QR code of your authenticator app link' })
    await qr.waitFor()
    t.ok(await qr.evaluate((img: HTMLImageElement) => img.decode().then(() => img.naturalWidth > 0)), 'to confirm it again, the QR code comes from GET /mfa/qr/')
    await page.getByRole('button', { name: 'Delete Authenticator App' }).click()
    await sees(t, dialog, /is not active\. Delete it\?/, 'an inactive method needs no code, only a yes')
    t.ok(await dialog.getByLabel('Code or backup code').isHidden())
    await dialog.getByRole('button', { name: 'OK' }).click()
    await sees(t, row('Authenticator App'), /Not set up/, 'deleted')
    t.ok(await page.locator('#setup').isHidden(), 'and its setup is closed')
  })

  await t.test('sessions: another browser\'s session is listed and revoked, and that browser is logged out', async (t) => {
    clock.advance(31) // past the resend cooldown, so this login mails a code
    const other = await newPage()
    t.teardown(() => other.context.close())
    await other.page.goto(`${base}/`)
    await logIn(other.page)
    const code = other.page.locator('#verify-form').getByLabel('Code of Email')
    await code.waitFor() // step 1 has answered, so its mail is in
    await code.fill(mailedCode(mailbox))
    await other.page.getByRole('button', { name: 'Verify' }).click()
    await other.page.getByRole('heading', { name: 'Signed in as alice' }).waitFor()

    await page.reload()
    await signedInHeading.waitFor()
    await sees(t, page.locator('#sessions'), /^(?=[\s\S]*This session)[\s\S]*Revoke/, 'this session and another one, which can be revoked')
    t.equal(await page.locator('#sessions li').count(), 2)
    await shot('page-signed-in')
    await page.locator('#sessions').getByRole('button', { name: /^Revoke/ }).click()
    await page.locator('#sessions li').nth(1).waitFor({ state: 'detached' })
    t.equal(await page.locator('#sessions li').count(), 1, 'only this session is left')

    await other.page.getByRole('button', { name: 'Run the protected action' }).click()
    await sees(t, other.page.locator('#status'), /Your session has ended/, 'the revoked browser finds itself logged out')
    await other.page.getByRole('heading', { name: 'Log in' }).waitFor()
  })

  await t.test('the protected action asks for a fresh second factor, then runs', async (t) => {
    clock.advance(301) // older than the route's maxAge (and the access token has expired: the client refreshes first)
    await page.getByRole('button', { name: 'Run the protected action' }).click()
    await dialog.getByRole('heading', { name: 'Confirm it is you' }).waitFor()
    t.match(await dialog.textContent(), /in the last 5 minutes/, 'the route\'s max_age is told')
    t.equal(await dialog.getByLabel('Method').inputValue(), 'email', 'the primary first')
    await dialog.getByRole('button', { name: 'Send me a code' }).click()
    await sees(t, dialog.getByRole('status'), /sent/, 'a code was mailed')
    await dialog.getByLabel('Code or backup code').fill(mailedCode(mailbox))
    await shot('page-step-up')
    await dialog.getByRole('button', { name: 'OK' }).click()
    await sees(t, page.locator('#demo-result'), /the server answered \{"done":true\}/, 'the action ran')
  })

  await t.test('delete the active email method: it wants a code', async (t) => {
    clock.advance(31) // past the cooldown of the step-up's code
    await page.getByRole('button', { name: 'Delete Email' }).click()
    await dialog.getByRole('button', { name: 'Send me a code' }).click()
    await sees(t, dialog.getByRole('status'), /sent/, 'a code was mailed')
    await dialog.getByLabel('Code or backup code').fill(mailedCode(mailbox))
    await dialog.getByRole('button', { name: 'OK' }).click()
    await sees(t, row('Email'), /Not set up/, 'deleted')
    await sees(t, status, /Email deleted/, 'and said so')
  })

  await t.test('the page links to the Swagger UI, which the demo still serves', async (t) => {
    await page.getByRole('link', { name: 'API docs (Swagger UI)' }).click()
    await page.locator('.swagger-ui .opblock-tag').first().waitFor()
    t.equal(await page.title(), SWAGGER_UI_THEME.title, 'the plugin\'s Swagger UI (its theme names the page)')
  })

  await t.test('startPasskey and finishPasskey against Chromium\'s virtual authenticator', async (t) => {
    // The server side of passkeys is not needed: the browser makes a real
    // credential and assertion, and Node checks the assertion's signature with
    // the public key the registration JSON carries. WebAuthn wants a domain, so
    // the page is opened as localhost.
    const { context, page: browserPage } = await newPage()
    t.teardown(() => context.close())
    const cdp = await context.newCDPSession(browserPage)
    await cdp.send('WebAuthn.enable')
    await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true } })
    await browserPage.goto(base.replace('127.0.0.1', 'localhost') + '/')
    const helpers = await build({ entryPoints: [join(ROOT, 'src/client/passkey.ts')], bundle: true, format: 'iife', globalName: 'passkeyHelpers', write: false, logLevel: 'silent' })
    // Through the debugger: the page's policy admits no other script, rightly.
    await browserPage.evaluate(`${helpers.outputFiles[0].text}; window.passkeyHelpers = passkeyHelpers`)

    const challenge = randomBytes(32).toString('base64url')
    const userId = randomBytes(16).toString('base64url')
    const registration = await browserPage.evaluate(async (options) => {
      const { startPasskey, finishPasskey } = (window as any).passkeyHelpers
      return finishPasskey(await startPasskey(options))
    }, { rp: { id: 'localhost', name: 'Auth Kit Demo' }, user: { id: userId, name: 'alice', displayName: 'alice' }, challenge, pubKeyCredParams: [{ type: 'public-key', alg: -7 }], authenticatorSelection: { residentKey: 'required', userVerification: 'required' }, attestation: 'none' })
    const madeFor = JSON.parse(Buffer.from(registration.response.clientDataJSON, 'base64url').toString('utf8'))
    t.match(madeFor, { type: 'webauthn.create', challenge }, 'the browser signed our challenge, decoded from base64url')
    t.equal(registration.rawId, registration.id, 'rawId is the id, as base64url')
    t.equal(registration.response.publicKeyAlgorithm, -7)
    t.ok(registration.response.attestationObject.length > 0 && registration.response.authenticatorData.length > 0)

    const assertionChallenge = randomBytes(32).toString('base64url')
    const assertion = await browserPage.evaluate(async (options) => {
      const { startPasskey, finishPasskey } = (window as any).passkeyHelpers
      return finishPasskey(await startPasskey(options))
    }, { challenge: assertionChallenge, rpId: 'localhost', allowCredentials: [{ id: registration.id, type: 'public-key' }], userVerification: 'required' })
    t.equal(assertion.id, registration.id, 'the credential just made answered')
    t.equal(assertion.response.userHandle, userId, 'userHandle is the user id, as base64url')
    const clientData = Buffer.from(assertion.response.clientDataJSON, 'base64url')
    t.match(JSON.parse(clientData.toString('utf8')), { type: 'webauthn.get', challenge: assertionChallenge })
    const signed = Buffer.concat([Buffer.from(assertion.response.authenticatorData, 'base64url'), createHash('sha256').update(clientData).digest()])
    const publicKey = createPublicKey({ key: Buffer.from(registration.response.publicKey, 'base64url'), format: 'der', type: 'spki' })
    t.ok(verify('sha256', signed, publicKey, Buffer.from(assertion.response.signature, 'base64url')), 'the signature checks out with the registered public key')
  })

  expectOnlyProvokedErrors(t, log, errorCodes, [
    'POST /api/auth/registration/ 400 FST_ERR_VALIDATION',
    'POST /api/auth/mfa/confirm/ 403 AUTH_KIT_INVALID_CODE',
    'POST /api/auth/mfa/ 401 AUTH_KIT_STEP_UP_REQUIRED',
    'POST /api/auth/login/resend/ 429 AUTH_KIT_RESEND_TOO_SOON',
    'POST /api/demo-action 401 AUTH_KIT_UNAUTHORIZED',
    'POST /api/auth/token/refresh/ 401 AUTH_KIT_INVALID_REFRESH_TOKEN',
    'POST /api/demo-action 401 AUTH_KIT_UNAUTHORIZED',
    'POST /api/demo-action 401 AUTH_KIT_STEP_UP_REQUIRED',
  ])
}

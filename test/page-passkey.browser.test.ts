import t, { type Test } from 'tap'
import { join } from 'node:path'
import { buildDemo } from '../examples/app.js'
import { manualClock, SECRET, totp } from './helpers/app.js'
import { demoPage, expectOnlyProvokedErrors, freePort, inChromium, recordErrorAnswers, screenshotDir, sees, testInChromium } from './helpers/browser.js'

// SPEC sections 10 and 11: the demo's page with a passkey, only by clicking
// and typing, in Debian's chromium with a CDP virtual authenticator standing
// for the person's device (it says yes by itself). The app is the one
// `npm start` serves (examples/app.ts), on a clock the test moves. WebAuthn
// wants a domain, so the page is opened as http://localhost:PORT/, the origin
// the demo's `webauthn` option names; the server listens on 127.0.0.1, as
// `npm start` does. The journey: set up the app, then a passkey, make the
// passkey primary with the app's code, log in with it, step up with it for the
// protected action, new backup codes, primary, deactivate and delete with it.
// No error may reach the browser console, and no request may fail.
// UPDATE_SCREENSHOTS=1 writes the README's passkey screenshot to docs/screenshots/.
testInChromium(t, 'the demo page with a passkey, only by clicking and typing', 'the page\'s passkey test', walkWithAPasskey)

const PASSWORD = 'correct horse battery staple'

async function walkWithAPasskey (t: Test): Promise<void> {
  const shots = screenshotDir(t)

  const port = await freePort()
  const base = `http://localhost:${port}`
  const clock = manualClock(Date.now())
  const { app } = await buildDemo({ secret: SECRET, database: 'sqlite::memory:', origins: [base], now: clock.now })
  t.teardown(() => app.close())
  const errorCodes = recordErrorAnswers(app)
  await app.listen({ port, host: '127.0.0.1' })

  const { context, page, log } = await inChromium(t, { context: { viewport: { width: 1000, height: 820 } } })
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  })
  /** The credential ids the virtual authenticator holds, as base64url. */
  const heldCredentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.map((c) => Buffer.from(c.credentialId, 'base64').toString('base64url'))
  const storedCredential = () => app.authKit.db.selectFrom('auth_kit_credential').select(['credential_id', 'sign_count']).executeTakeFirst()

  let secret = ''
  let firstCredential = ''
  /** The authenticator app: the code of the next 30-second step. */
  async function appCode (): Promise<string> {
    clock.advance(30)
    return totp(secret, clock.now())
  }
  const { status, signedInHeading, row, dialog, logIn } = demoPage(page, 'alice', PASSWORD)
  const usePasskeyInDialog = dialog.getByRole('button', { name: 'Use your passkey' })

  await t.test('register and log in on localhost; set up the app', async (t) => {
    await page.goto(`${base}/`)
    const form = page.locator('#register-form')
    await form.getByLabel('Username').fill('alice')
    await form.getByLabel('Email').fill('alice@example.com')
    await form.getByLabel('Password').fill(PASSWORD)
    await form.getByRole('button', { name: 'Create account' }).click()
    await sees(t, status, /Account alice created/, 'registered')
    await logIn()
    await signedInHeading.waitFor()
    await sees(t, row('Passkey'), /Not set up/, 'the demo lists the passkey method')
    t.ok(await page.locator('#passkey').isVisible(), 'and shows the passkey card')

    await page.getByRole('button', { name: 'Set up Authenticator App' }).click()
    await page.locator('#setup-key').filter({ hasText: /\S/ }).waitFor()
    secret = (await page.locator('#setup-key').textContent() ?? '').replace(/\s/g, '')
    await page.locator('#confirm-form').getByLabel('Code of Authenticator App').fill(await totp(secret, clock.now()))
    await page.locator('#confirm-form').getByRole('button', { name: 'Confirm' }).click()
    await sees(t, row('Authenticator App'), /Active, primary/, 'the app is the primary')
    await page.getByRole('button', { name: 'I have saved them' }).click()
  })

  await t.test('set up the passkey: step up with the app, create it in the browser, confirmed', async (t) => {
    await page.getByRole('button', { name: 'Set up Passkey' }).click()
    await dialog.getByRole('heading', { name: 'Confirm it is you' }).waitFor()
    await dialog.getByLabel('Code or backup code').fill(await appCode())
    await dialog.getByLabel('Code or backup code').press('Enter')
    const create = page.getByRole('button', { name: 'Create the passkey' })
    await sees(t, page.locator('#setup-detail'), /Create the passkey/, 'the setup says where to go on')
    t.ok(await create.isEnabled(), 'the passkey card\'s button is ready')
    t.equal(await page.locator('#backup-codes li').count(), 10, 'the passkey has its own backup codes')
    await page.getByRole('button', { name: 'I have saved them' }).click()
    await page.locator('#passkey').scrollIntoViewIfNeeded()
    await page.locator('#passkey').screenshot({ path: join(shots, 'page-passkey.png') })
    await create.click()
    await sees(t, row('Passkey'), /Active(?!, primary)/, 'confirmed: active, not primary')
    t.ok(await create.isDisabled(), 'nothing left to create')
    const held = await heldCredentials()
    t.equal(held.length, 1, 'the authenticator made one credential')
    firstCredential = held[0]
    t.equal((await storedCredential())?.credential_id, firstCredential, 'and the server stored that one')
  })

  await t.test('make the passkey primary with a code of the app, the current primary', async (t) => {
    await page.getByRole('button', { name: 'Make Passkey primary' }).click()
    await dialog.getByRole('heading', { name: 'Make Passkey primary' }).waitFor()
    t.match(await dialog.textContent(), /current primary method, Authenticator App/)
    t.ok(await usePasskeyInDialog.isHidden(), 'the app\'s code is asked for, not the passkey')
    await dialog.getByLabel('Code or backup code').fill(await appCode())
    await dialog.getByRole('button', { name: 'OK' }).click()
    await sees(t, row('Passkey'), /Active, primary/, 'the passkey is primary')
  })

  await t.test('log out; log in with the passkey as the second step', async (t) => {
    await page.getByRole('button', { name: 'Log out', exact: true }).click()
    await sees(t, status, /Logged out/, 'logged out')
    await logIn()
    const usePasskey = page.locator('#verify-form').getByRole('button', { name: 'Use your passkey' })
    await usePasskey.waitFor()
    t.ok(await page.locator('#resend').isHidden(), 'a passkey is sent no code: no resend')
    await usePasskey.click()
    await signedInHeading.waitFor()
    await sees(t, page.locator('#sessions'), /This session[^\n]*with a second factor/, 'a second-factor session')
    t.equal(Number((await storedCredential())?.sign_count), (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0].signCount, 'the server kept the authenticator\'s counter')
  })

  await t.test('the protected action: step up with the passkey', async (t) => {
    clock.advance(301) // older than the route's maxAge (and past the access token: the client refreshes first)
    await page.getByRole('button', { name: 'Run the protected action' }).click()
    await dialog.getByRole('heading', { name: 'Confirm it is you' }).waitFor()
    t.equal(await dialog.getByLabel('Method').inputValue(), 'passkey', 'the primary first')
    t.match(await dialog.textContent(), /use your passkey/)
    t.ok(await dialog.getByRole('button', { name: 'Send me a code' }).isHidden(), 'no code to send')
    await usePasskeyInDialog.click()
    await sees(t, page.locator('#demo-result'), /the server answered \{"done":true\}/, 'the action ran')
  })

  await t.test('new backup codes with the passkey', async (t) => {
    await page.getByRole('button', { name: 'New backup codes for Passkey' }).click()
    await usePasskeyInDialog.click()
    await sees(t, page.locator('#backup-method'), /Passkey/, 'new codes are shown')
    t.equal(await page.locator('#backup-codes li').count(), 10)
    await page.getByRole('button', { name: 'I have saved them' }).click()
  })

  await t.test('make the app primary again with the passkey, the current primary', async (t) => {
    await page.getByRole('button', { name: 'Make Authenticator App primary' }).click()
    t.match(await dialog.textContent(), /current primary method, Passkey/)
    await usePasskeyInDialog.click()
    await sees(t, row('Authenticator App'), /Active, primary/, 'the app is primary')
  })

  await t.test('deactivate the passkey with the passkey; confirm it again with fresh options; delete it with the passkey', async (t) => {
    await page.getByRole('button', { name: 'Deactivate Passkey' }).click()
    await usePasskeyInDialog.click()
    await sees(t, row('Passkey'), /Not active/, 'deactivated')
    await page.getByRole('button', { name: 'Confirm Passkey' }).click()
    await sees(t, page.locator('#setup-detail'), /Create the passkey/, 'fresh creation options came from POST /mfa/send/')
    await page.getByRole('button', { name: 'Create the passkey' }).click()
    await sees(t, row('Passkey'), /Active(?!, primary)/, 'active again')
    const held = await heldCredentials() // in no particular order
    const stored = (await storedCredential())?.credential_id
    t.equal(held.length, 2, 'the authenticator made a second credential')
    t.ok(stored !== firstCredential && held.includes(stored!), 'and the server stored it in place of the first')
    await page.getByRole('button', { name: 'Delete Passkey' }).click()
    await dialog.getByRole('heading', { name: 'Delete Passkey' }).waitFor()
    await usePasskeyInDialog.click()
    await sees(t, row('Passkey'), /Not set up/, 'deleted')
    await sees(t, status, /Passkey deleted/, 'and said so')
    t.equal(await storedCredential(), undefined, 'its credential is gone from the server')
  })

  expectOnlyProvokedErrors(t, log, errorCodes, [
    'POST /api/auth/mfa/ 401 AUTH_KIT_STEP_UP_REQUIRED',
    'POST /api/demo-action 401 AUTH_KIT_UNAUTHORIZED',
    'POST /api/demo-action 401 AUTH_KIT_STEP_UP_REQUIRED',
  ])
}

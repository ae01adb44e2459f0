import t, { type Test } from 'tap'
import { join } from 'node:path'
import { AppHandler, EmailHandler } from '../src/index.js'
import { buildApp, manualClock, secretOf, totp } from './helpers/app.js'
import { inChromium, screenshotDir, testInChromium } from './helpers/browser.js'

// SPEC section 11: the Swagger UI is a way to learn the API. A person's first
// session, only by clicking and typing in the page, in Debian's chromium driven
// by playwright-core: register, log in, authorize, set up the app method, see
// the QR code, confirm, log in with two steps, reload and stay authorized, with
// no error in the browser console. The test plays the authenticator app.
// UPDATE_SCREENSHOTS=1 writes the screenshots the README shows into docs/.
// A browser on a loaded machine is slow: the file gets more than .taprc's 120 s.
t.setTimeout(5 * 60 * 1000)
testInChromium(t, 'a first session in Swagger UI, only by clicking and typing', 'the Swagger UI test', walkFirstSession)

async function walkFirstSession (t: Test): Promise<void> {
  const shots = screenshotDir(t, 'docs')

  const clock = manualClock(Date.now())
  const app = await buildApp({
    docs: {}, now: clock.now,
    email: { transport: { jsonTransport: true }, from: 'no-reply@example.com' },
    mfa: { handlers: [AppHandler, EmailHandler] },
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`

  const { page, log: { consoleErrors } } = await inChromium(t, { context: { viewport: { width: 1280, height: 900 } } })

  /** Opens an operation, presses "Try it out", types the body (or keeps the example), presses "Execute". */
  async function execute (id: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number, json: any, op: ReturnType<typeof page.locator> }> {
    const op = page.locator(`#${id}`)
    if (!(await op.getAttribute('class') ?? '').includes('is-open')) await op.locator('.opblock-summary').first().click()
    const tryOut = op.locator('.try-out__btn')
    if ((await tryOut.textContent())?.trim() === 'Try it out') await tryOut.click()
    if (body !== undefined) await op.locator('textarea.body-param__text').fill(JSON.stringify(body, null, 2))
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === method && new URL(r.url()).pathname === `/api/auth${path}`),
      op.locator('.btn.execute').click(),
    ])
    const status = response.status()
    // The page shows the answer's status in its live response table.
    await op.locator('.live-responses-table tbody .response-col_status', { hasText: String(status) }).first().waitFor()
    const type = response.headers()['content-type'] ?? ''
    return { status, json: type.includes('json') ? await response.json() : undefined, op }
  }

  async function authorize (access: string): Promise<void> {
    await page.locator('.scheme-container .btn.authorize').click()
    const dialog = page.locator('.modal-ux')
    const existing = dialog.locator('button', { hasText: 'Logout' })
    if (await existing.count() > 0) await existing.click()
    await dialog.locator('input#auth-bearer-value').fill(access)
    await dialog.locator('button.authorize', { hasText: 'Authorize' }).click()
    await dialog.locator('button.btn-done').click()
  }

  await page.goto(`${base}/api/docs`)
  await page.locator('.opblock-tag').first().waitFor()
  const tags = await page.locator('.opblock-tag').evaluateAll((els) => els.map((el) => el.getAttribute('data-tag')))
  const order = ['login', 'methods', 'sessions and devices']
  t.same(tags.slice(0, 2), ['login', 'methods'], 'login first, then methods')
  t.same(tags, order.filter((tag) => tags.includes(tag)), 'the tags, in order')
  t.match(await page.locator('.information-container').textContent(), /A first session/, 'the landing text walks a first session')
  await page.screenshot({ path: join(shots, 'swagger-ui-walkthrough.png') })

  const registered = await execute('operations-login-register', 'POST', '/registration/')
  t.equal(registered.status, 201, 'register: the example works as it is')
  const firstLogin = await execute('operations-login-login', 'POST', '/login/')
  t.equal(firstLogin.status, 200, 'log in: the example works as it is')
  t.equal(firstLogin.json.mfa_enabled, false, 'one step while alice has no method')

  await page.locator('.scheme-container .btn.authorize').click()
  t.match(await page.locator('.modal-ux').textContent(), /Paste the access token/, 'the Authorize dialog says which token to paste')
  await page.screenshot({ path: join(shots, 'swagger-ui-authorize.png') })
  await page.locator('.modal-ux button.close-modal').click()
  await authorize(firstLogin.json.access)

  const created = await execute('operations-methods-createMethod', 'POST', '/mfa/')
  t.equal(created.status, 201, 'set up the app method: the example works as it is')
  const secret = secretOf(created.json.setup_data.qr_link)

  await t.test('see the QR code: Swagger UI shows the answer of GET /mfa/qr/ as a picture', async (t) => {
    const shown = await execute('operations-methods-getMethodQr', 'GET', '/mfa/qr/')
    t.equal(shown.status, 200, `status ${shown.status}: ${JSON.stringify(shown.json)}`)
    // The documented answers: the 200 example is the SVG text (Swagger UI alone
    // says "XML example cannot be generated"), the 400 one a bad query, not a body.
    const documented = (code: number) => shown.op.locator(`table.responses-table:not(.live-responses-table) tr.response[data-code="${code}"] .example`).first()
    const svgExample = await documented(200).textContent() ?? ''
    t.match(svgExample, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, 'the documented 200 example is an SVG document')
    t.notMatch(svgExample, /cannot be generated/, 'not Swagger UI\'s XML placeholder')
    t.match(await documented(400).textContent(), /querystring\/method/, 'the documented 400 example names the query the route takes')
    // Swagger UI 5 alone shows an image/svg+xml answer as XML text; the plugin's
    // script (src/docs.ts) makes it an <img>. It must have loaded, have a size,
    // and hold a picture: dark and light pixels, as a QR code has.
    const picture = shown.op.locator('.live-responses-table img.auth-kit-svg-answer')
    await picture.waitFor()
    await picture.scrollIntoViewIfNeeded()
    const loaded = await picture.evaluate(async (img: HTMLImageElement) => {
      await img.decode()
      const canvas = document.createElement('canvas')
      canvas.width = img.naturalWidth
      canvas.height = img.naturalHeight
      const context = canvas.getContext('2d')!
      context.drawImage(img, 0, 0)
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height)
      let dark = 0
      let light = 0
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] === 0) continue
        if (data[i] < 64) dark++
        else if (data[i] > 192) light++
      }
      return { complete: img.complete, naturalWidth: img.naturalWidth, dark, light }
    })
    t.ok(loaded.complete && loaded.naturalWidth > 0, `the image loaded (${loaded.naturalWidth} px wide)`)
    t.ok(loaded.dark > 0 && loaded.light > 0, `it is a picture of dark and light modules (${loaded.dark} dark, ${loaded.light} light pixels)`)
    const box = await picture.boundingBox()
    t.ok(box !== null && box.width > 100 && box.height > 100, `it is shown at a size a phone can scan (${box?.width} × ${box?.height})`)
    t.equal(await shown.op.locator('.live-responses-table .response-col_description').filter({ hasText: '<svg' }).count(), 0, 'not as markup')
    await page.screenshot({ path: join(shots, 'swagger-ui-qr.png') })
  })

  const confirmed = await execute('operations-methods-confirmMethod', 'POST', '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) })
  t.equal(confirmed.status, 200, 'confirm with the code the app shows')
  clock.advance(30) // the confirm step is spent: the app shows the next code

  const secondLogin = await execute('operations-login-login', 'POST', '/login/')
  t.equal(secondLogin.status, 200)
  t.equal(secondLogin.json.mfa_enabled, true, 'now login takes two steps')
  const verified = await execute('operations-login-loginVerify', 'POST', '/login/verify/', { ephemeral_token: secondLogin.json.ephemeral_token, code: await totp(secret, clock.now()) })
  t.equal(verified.status, 200, 'step 2 with the next code')
  await authorize(verified.json.access)
  await verified.op.evaluate((el) => el.scrollIntoView({ block: 'start' }))
  await page.screenshot({ path: join(shots, 'swagger-ui-two-steps.png') })

  await page.reload()
  await page.locator('.opblock-tag').first().waitFor()
  const me = await execute('operations-login-getUser', 'GET', '/user/')
  t.equal(me.status, 200, 'after a reload the page still sends the token')
  t.equal(me.json.user.username, 'alice')

  t.same(consoleErrors, [], 'no error in the browser console')
}

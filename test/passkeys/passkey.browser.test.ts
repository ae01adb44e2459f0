import t, { type Test } from 'tap'
import Fastify from 'fastify'
import authKitMfa, { PasskeyHandler } from '../../src/index.js'
import { SECRET } from '../helpers/app.js'
import { freePort, inChromium, testInChromium } from '../helpers/browser.js'

// SPEC section 10 in a real browser: Debian's chromium, driven by
// playwright-core, with a CDP virtual authenticator standing for the user's
// device (WebAuthn.addVirtualAuthenticator). A minimal page on
// http://localhost:PORT (rpID "localhost") registers a passkey, then logs in
// with it, through the browser's own WebAuthn JSON parsing and serialization
// (parseCreationOptionsFromJSON, parseRequestOptionsFromJSON, toJSON).
testInChromium(t, 'real Chromium registers a passkey, then logs in with it', 'the passkey browser test', registerThenLogIn)

// The page: every step is a function the test calls, and each answers what the server said.
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Passkey test page</title>
<script>
const api = async (path, body, access) => {
  const res = await fetch('/api/auth' + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...(access ? { authorization: 'Bearer ' + access } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}

window.registerPasskey = async (username, password) => {
  await api('/registration/', { username, email: username + '@example.com', password })
  const login = await api('/login/', { username, password })
  const access = login.body.access
  const created = await api('/mfa/', { method: 'passkey' }, access)
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(created.body.setup_data.options)
  const credential = await navigator.credentials.create({ publicKey })
  const confirmed = await api('/mfa/confirm/', { method: 'passkey', credential: credential.toJSON() }, access)
  const methods = await api('/mfa/', undefined, access)
  return { created: created.status, confirmed: confirmed.status, credentialId: credential.id, methods: methods.body }
}

window.logInWithPasskey = async (username, password) => {
  const step1 = await api('/login/', { username, password })
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(step1.body.challenge)
  const assertion = await navigator.credentials.get({ publicKey })
  const step2 = await api('/login/verify/', { ephemeral_token: step1.body.ephemeral_token, credential: assertion.toJSON() })
  return { step1: step1.body, step2: step2.status, access: step2.body.access }
}
</script>
<p>Passkey test page</p>`

async function registerThenLogIn (t: Test): Promise<void> {
  const port = await freePort()
  const origin = `http://localhost:${port}`

  const app = Fastify({ logger: false })
  await app.register(authKitMfa, {
    secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false,
    webauthn: { rpID: 'localhost', rpName: 'Auth Kit Browser Test', origins: [origin] },
    mfa: { handlers: [PasskeyHandler] },
  })
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
  t.teardown(() => app.close())
  await app.listen({ port, host: 'localhost' })

  const { context, page } = await inChromium(t)
  const pageErrors: string[] = []
  page.on('pageerror', (error) => pageErrors.push(error.message))
  await page.goto(`${origin}/`)

  // The user's device: a platform authenticator that says yes by itself.
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  })

  const username = 'alice'
  const password = 'correct horse battery staple'
  const registered = await page.evaluate(async ([u, p]) => (window as any).registerPasskey(u, p), [username, password])
  t.equal(registered.created, 201, 'POST /mfa/ answered creation options')
  t.equal(registered.confirmed, 200, 'POST /mfa/confirm/ took the browser\'s RegistrationResponseJSON')
  t.match(registered.methods.find((m: { name: string }) => m.name === 'passkey'), { is_active: true, is_primary: true, requires_dispatch: true })
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  t.equal(credentials.length, 1, 'the virtual authenticator holds one credential')
  t.equal(Buffer.from(credentials[0].credentialId, 'base64').toString('base64url'), registered.credentialId, 'the one the server stored')
  t.equal(credentials[0].rpId, 'localhost')

  const loggedIn = await page.evaluate(async ([u, p]) => (window as any).logInWithPasskey(u, p), [username, password])
  t.match(loggedIn.step1, { mfa_enabled: true, method: 'passkey', challenge: { rpId: 'localhost' } }, 'step 1 answered a challenge')
  t.equal(loggedIn.step2, 200, 'POST /login/verify/ took the browser\'s AuthenticationResponseJSON')
  const claims = JSON.parse(Buffer.from(loggedIn.access.split('.')[1], 'base64url').toString('utf8'))
  t.same(claims.amr, ['pwd', 'mfa'], 'a second-factor session')
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  const stored = await app.authKit.db.selectFrom('auth_kit_credential').select('sign_count').executeTakeFirstOrThrow()
  t.equal(Number(stored.sign_count), after.credentials[0].signCount, 'the server kept the authenticator\'s signature counter')
  t.same(pageErrors, [], 'no error on the page')
}

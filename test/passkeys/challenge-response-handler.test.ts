import t from 'tap'
import { AppHandler } from '../../src/index.js'
import { buildApp, expectError, get, manualClock, newUser, post } from '../helpers/app.js'
import { SigningDeviceHandler, signingDevice } from '../helpers/signing-device.js'

// Issue 10, part 4, and issue 15: what differs between methods lives in the
// handler, so a host's own challenge–response method (here a device that signs
// challenges with Ed25519) gets setup, login, step-up, the method routes,
// backup codes, the lockout and the document without a line of the plugin's.

const clock = manualClock()
const app = await buildApp({ docs: {}, now: clock.now, mfa: { handlers: [AppHandler, SigningDeviceHandler], maxAttemptsPerToken: 3 } })
t.teardown(() => app.close())

t.test('a host-written challenge–response method works through every route', async (t) => {
  const user = await newUser(app)
  const device = signingDevice()
  const created = await post(app, '/mfa/', { method: 'signing_device' }, user.access)
  t.equal(created.status, 201)
  t.match(created.body.setup_data, { challenge: /^[A-Za-z0-9_-]{43}$/ })
  const forged = signingDevice().register(created.body.setup_data.challenge)
  expectError(t, await post(app, '/mfa/confirm/', { method: 'signing_device', credential: { ...forged, publicKey: device.publicKey } }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'a signature by another key')
  t.equal((await post(app, '/mfa/confirm/', { method: 'signing_device', credential: device.register(created.body.setup_data.challenge) }, user.access)).status, 200, 'confirmed with a signature of the setup challenge')
  t.match((await get(app, '/mfa/', user.access)).body[1], { name: 'signing_device', is_active: true, is_primary: true, requires_dispatch: true })

  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.match(step1.body, { method: 'signing_device', challenge: { challenge: /^[A-Za-z0-9_-]{43}$/ } })
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, credential: { challenge: step1.body.challenge.challenge, signature: 'AAAA' } }), 401, 'AUTH_KIT_INVALID_CODE', 'a bad signature')
  const verified = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, credential: device.answer(step1.body.challenge.challenge) })
  t.equal(verified.status, 200, 'logged in with a signature of the attempt\'s challenge')

  const sent = await post(app, '/mfa/send/', { method: 'signing_device' }, verified.body.access)
  t.same(Object.keys(sent.body).sort(), ['challenge', 'detail'])
  const stepped = await post(app, '/login/step-up/', { credential: device.answer(sent.body.challenge.challenge) }, verified.body.access)
  t.equal(stepped.status, 200, 'step-up')
  expectError(t, await post(app, '/login/step-up/', { credential: device.answer(sent.body.challenge.challenge) }, verified.body.access), 403, 'AUTH_KIT_INVALID_CODE', 'the challenge worked once')
  const again = await post(app, '/mfa/send/', { method: 'signing_device' }, verified.body.access)
  const regenerated = await post(app, '/mfa/backup-codes/', { method: 'signing_device', credential: device.answer(again.body.challenge.challenge) }, verified.body.access)
  t.equal(regenerated.status, 200, 'a method route')
  expectError(t, await post(app, '/login/verify/', { ephemeral_token: 'x', credential: { challenge: 'a', signature: 5 } }), 400, 'FST_ERR_VALIDATION', 'its own credential schema validates the body')

  const doc = (await app.inject({ method: 'GET', url: '/api/docs/json' })).json()
  t.equal(doc.paths['/api/auth/login/verify/'].post.requestBody.content['application/json'].schema.properties.credential.title, 'SigningDeviceSignature', 'its credential shape is in the document')
  t.equal(doc.components.schemas.AuthKitLoginMfaStarted.properties.challenge.title, 'SigningDeviceChallenge', 'and its challenge')
})

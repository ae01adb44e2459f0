import t from 'tap'
import { buildApp, manualClock, post, userWithApp, totp } from './helpers/app.js'

t.test('two-step login with the app method', async (t) => {
  const clock = manualClock()
  const app = await buildApp({ now: clock.now })
  t.teardown(() => app.close())
  const user = await userWithApp(app, clock)
  const step1 = await post(app, '/login/', { username: user.username, password: user.password })
  t.equal(step1.status, 200)
  t.same(step1.body, { mfa_enabled: true, ephemeral_token: step1.body.ephemeral_token, method: 'app', methods: ['app'] })
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.body.ephemeral_token, code: await totp(user.secret, clock.now()) })
  t.equal(step2.status, 200, JSON.stringify(step2.body))
  t.ok(step2.body.access)
})

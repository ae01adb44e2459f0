import t from 'tap'
import { post, userWithApp, clockedApp } from './helpers/app.js'

// Nothing the plugin stores outlives its use forever: expired login attempts and
// refresh tokens are cleared per user when new ones are made, without a job.

t.test('expired login attempts are cleared when the user starts a new one', async (t) => {
  const { app, clock } = await clockedApp(t, { mfa: { ephemeralTokenExpiry: 60, backupCodes: { secureHash: false } } })
  const user = await userWithApp(app, clock)
  const count = async () => Number((await app.authKit.db.selectFrom('auth_kit_login_attempt').select((eb) => eb.fn.countAll().as('n')).where('user_id', '=', user.id).executeTakeFirstOrThrow()).n)
  for (let i = 0; i < 3; i++) t.equal((await post(app, '/login/', { username: user.username, password: user.password })).status, 200)
  t.equal(await count(), 3, 'live attempts are kept')
  clock.advance(61)
  t.equal((await post(app, '/login/', { username: user.username, password: user.password })).status, 200)
  t.equal(await count(), 1, 'only the new attempt is left')
})

t.test('expired refresh tokens are cleared when the user gets new ones', async (t) => {
  const { app, clock } = await clockedApp(t, { tokens: { refreshTokenExpiry: 120 } })
  const reg = await post(app, '/registration/', { username: 'keeper', email: 'keeper@example.com', password: 'long enough password' })
  const login = async () => post(app, '/login/', { username: 'keeper', password: 'long enough password' })
  const count = async () => Number((await app.authKit.db.selectFrom('auth_kit_refresh_token').select((eb) => eb.fn.countAll().as('n')).where('user_id', '=', reg.body.user.id).executeTakeFirstOrThrow()).n)
  await login()
  await login()
  t.equal(await count(), 2)
  clock.advance(121)
  const fresh = await login()
  t.equal(fresh.status, 200)
  t.equal(await count(), 1)
  t.equal((await post(app, '/token/refresh/', { refresh: fresh.body.refresh })).status, 200, 'the new one works')
})

t.test('a chain refreshed for a long time between logins keeps few spent tokens', async (t) => {
  // Spent tokens stay until they expire (reuse detection); a share of rotations
  // clears the expired ones, so the table does not grow with the chain's age.
  const { app, clock } = await clockedApp(t, { tokens: { refreshTokenExpiry: 120, accessTokenExpiry: 60 } })
  const reg = await post(app, '/registration/', { username: 'longchain', email: 'longchain@example.com', password: 'long enough password' })
  const count = async () => Number((await app.authKit.db.selectFrom('auth_kit_refresh_token').select((eb) => eb.fn.countAll().as('n')).where('user_id', '=', reg.body.user.id).executeTakeFirstOrThrow()).n)
  let refresh = (await post(app, '/login/', { username: 'longchain', password: 'long enough password' })).body.refresh as string
  const rotations = 400
  for (let i = 0; i < rotations; i++) {
    clock.advance(60)
    const res = await post(app, '/token/refresh/', { refresh })
    if (res.status !== 200) { t.fail(`rotation ${i}: ${res.status}`); return }
    refresh = res.body.refresh
  }
  const left = await count()
  // One rotation in 16 clears at random: the rows left are the rotations since
  // the last clearing, so more than 250 comes once in about 10 million runs.
  t.ok(left < 250, `${left} tokens left after ${rotations} rotations (without clearing: ${rotations + 1})`)
  t.equal((await post(app, '/token/refresh/', { refresh })).status, 200, 'the newest token still works')
})

// Attack: a leaked `secret`. The operator rotates it: the new key goes first
// in the list, values made under the old one keep working while it is listed,
// and once it is removed, what was signed with it is refused.
import t from 'tap'
import { join } from 'node:path'
import { buildApp, manualClock, post, get, totp, userWithApp, expectError } from '../helpers/app.js'
import { tempDir } from '../helpers/security.js'
import { loginToken } from '../helpers/flows.js'
import { recordingSmsHandler } from '../helpers/custom-handlers.js'
import { AppHandler } from '../../src/index.js'

const A = 'old-secret-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'new-secret-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'

const kidOf = (jwt: string): string => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString()).kid

t.test('rotating the secret: old values work while the old key is listed, new ones use the new key', async (t) => {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const database = `sqlite:${join(tempDir(t), 'rotation.db')}`
  const start = async (secret: string[]) => {
    const app = await buildApp({ secret, database, now: clock.now, mfa: { handlers: [AppHandler, sms.Handler] } })
    t.teardown(() => app.close())
    return app
  }

  // Under [A]: a user with the app method, a finished login, a pending one.
  const before = await start([A])
  const user = await userWithApp(before, clock)
  const login = await post(before, '/login/verify/', { ephemeral_token: await loginToken(before, user), code: await totp(user.secret, clock.now()) })
  t.equal(login.status, 200)
  const pending = await loginToken(before, user)
  const oldKid = kidOf(login.body.access)
  await before.close()

  // Under [B, A].
  clock.advance(30)
  const rotated = await start([B, A])
  t.equal((await get(rotated, '/user/', login.body.access)).status, 200, 'an access token signed with A still works')
  const viaOldSecret = await post(rotated, '/login/verify/', { ephemeral_token: pending, code: await totp(user.secret, clock.now()) })
  t.equal(viaOldSecret.status, 200, 'an ephemeral token hashed and a TOTP secret encrypted under A still work')
  t.not(kidOf(viaOldSecret.body.access), oldKid, 'new access tokens are signed with B')
  const viaOldBackup = await post(rotated, '/login/verify/', { ephemeral_token: await loginToken(rotated, user), code: user.backupCodes[0] })
  t.equal(viaOldBackup.status, 200, 'a backup code stored under A still works')
  const refreshed = await post(rotated, '/token/refresh/', { refresh: login.body.refresh })
  t.equal(refreshed.status, 200, 'a refresh token hashed under A still works')
  t.equal(kidOf(refreshed.body.access), kidOf(viaOldSecret.body.access))

  // A method set up now is sealed with B.
  const newcomer = await userWithApp(rotated, clock)
  await rotated.close()

  // Under [B] only.
  clock.advance(30)
  const retired = await start([B])
  const oldAccess = await get(retired, '/user/', login.body.access)
  expectError(t, oldAccess, 401, 'AUTH_KIT_UNAUTHORIZED', 'an access token signed with A is refused once A is removed')
  t.equal((await get(retired, '/user/', refreshed.body.access)).status, 200, 'one signed with B works')
  t.equal((await post(retired, '/token/refresh/', { refresh: refreshed.body.refresh })).status, 200, 'a refresh token issued under [B, A] works')
  const newcomerLogin = await post(retired, '/login/verify/', { ephemeral_token: await loginToken(retired, newcomer), code: await totp(newcomer.secret, clock.now()) })
  t.equal(newcomerLogin.status, 200, 'a TOTP secret set up under [B, A] was sealed with B')
  clock.advance(30)
  const resealed = await post(retired, '/login/verify/', { ephemeral_token: await loginToken(retired, user), code: await totp(user.secret, clock.now()) })
  t.equal(resealed.status, 200, 'a TOTP secret sealed under A moved to B when it was used under [B, A]')
})

t.test('a TOTP secret sealed under a removed key fails as a wrong code, never a 500', async (t) => {
  const clock = manualClock()
  const database = `sqlite:${join(tempDir(t), 'removed-key.db')}`
  const first = await buildApp({ secret: [A], database, now: clock.now })
  const user = await userWithApp(first, clock)
  await first.close()
  const app = await buildApp({ secret: [B], database, now: clock.now })
  t.teardown(() => app.close())
  const verify = await post(app, '/login/verify/', { ephemeral_token: await loginToken(app, user), code: await totp(user.secret, clock.now()) })
  expectError(t, verify, 401, 'AUTH_KIT_INVALID_CODE')
})

t.test('a secret list is checked at registration', async (t) => {
  await t.rejects(buildApp({ secret: [B, 'short'] }), /secret/)
  await t.rejects(buildApp({ secret: [] }), /secret/)
})

import t from 'tap'
import { get, manualClock, newUser, post, secretOf, totp } from '../helpers/app.js'
import { twoInstances } from '../helpers/security.js'
import { SecondAppHandler } from '../helpers/flows.js'
import { AppHandler } from '../../src/index.js'

// Rule 10 on SQLite: two plugin instances on one file, requests spread over
// both. (The suite under test/multiprocess/ runs real processes on PostgreSQL
// and MariaDB.)

const clock = manualClock()
const [a, b] = await twoInstances(t, { now: clock.now, mfa: { handlers: [AppHandler, SecondAppHandler] } })

async function userWithTwoMethods () {
  const user = await newUser(a)
  const secrets: Record<string, string> = {}
  const backup: Record<string, string[]> = {}
  let access = user.access
  for (const method of ['app', 'second_app']) {
    const created = await post(a, '/mfa/', { method }, access)
    secrets[method] = secretOf(created.body.setup_data.qr_link)
    backup[method] = created.body.backup_codes
    await post(a, '/mfa/confirm/', { method, code: await totp(secrets[method], clock.now()) }, access)
    clock.advance(30)
    if (method === 'app') access = (await post(a, '/login/step-up/', { code: await totp(secrets.app, clock.now()) }, access)).body.access
  }
  clock.advance(30)
  return { ...user, access, secrets, backup }
}

t.test('parallel regenerations with different valid backup codes: exactly one 200, only its set works', async (t) => {
  const user = await userWithTwoMethods()
  const results = await Promise.all(user.backup.app.slice(0, 5).map((code, i) => post(i % 2 === 0 ? a : b, '/mfa/backup-codes/', { method: 'app', code }, user.access)))
  const statuses = results.map((r) => r.status).sort()
  t.same(statuses, [200, 403, 403, 403, 403])
  for (const r of results.filter((r) => r.status === 403)) t.equal(r.body.code, 'AUTH_KIT_INVALID_CODE')
  const winner = results.find((r) => r.status === 200)!.body.backup_codes as string[]
  t.equal((await get(a, '/mfa/', user.access)).body[0].backup_codes_remaining, winner.length, 'only the new set is stored')
  t.equal((await post(b, '/login/step-up/', { code: user.backup.app[7] }, user.access)).status, 403, 'an old code is dead')
  t.equal((await post(b, '/login/step-up/', { code: winner[0] }, user.access)).status, 200, 'a new one works')
})

t.test('primary, deactivate and delete racing: always exactly one active primary', async (t) => {
  for (let round = 0; round < 6; round++) {
    const user = await userWithTwoMethods()
    const appCode = await totp(user.secrets.app, clock.now())
    const secondCode = await totp(user.secrets.second_app, clock.now())
    await Promise.all([
      post(a, '/mfa/primary/', { method: 'second_app', primary_code: appCode }, user.access),
      post(b, '/mfa/deactivate/', { method: 'second_app', code: secondCode }, user.access),
      post(round % 2 === 0 ? a : b, '/mfa/delete/', { method: 'app', code: user.backup.app[0] }, user.access),
    ])
    const methods = (await get(a, '/mfa/', user.access)).body as Array<{ is_active: boolean, is_primary: boolean }>
    const active = methods.filter((m) => m.is_active)
    const primaries = methods.filter((m) => m.is_primary)
    t.ok(active.length === 0 ? primaries.length === 0 : primaries.length === 1 && primaries[0].is_active, `round ${round}: ${JSON.stringify(methods)}`)
    const login = await post(a, '/login/', { username: user.username, password: user.password })
    t.equal(login.body.mfa_enabled, active.length > 0, 'the next login asks for a second step while a method is active')
    clock.advance(30)
  }
})

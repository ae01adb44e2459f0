// Attack: malformed input aimed at crashes (500s that leak internals or kill a
// process), type confusion, and prototype pollution. A few thousand seeded
// random requests go to every route, with and without valid tokens; every
// answer must be a 4xx or a documented 2xx, and nothing may change.
// Replay a failure with FUZZ_SEED=<seed printed in the failing assertion>.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { AppHandler } from '../../src/index.js'
import { buildApp, manualClock, post, get, P, totp } from '../helpers/app.js'
import { seededRandom, totpWindow } from '../helpers/security.js'
import { userWithAppAndSms, loginToken, startLogin, wrongCode } from '../helpers/flows.js'
import { recordingSmsHandler } from '../helpers/custom-handlers.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20260101)
const REQUESTS = 2000

interface Route { method: 'GET' | 'POST', url: string, fields: string[], documented2xx: number[] }
const ROUTES: Route[] = [
  { method: 'POST', url: '/login/', fields: ['username', 'password'], documented2xx: [] },
  { method: 'POST', url: '/login/verify/', fields: ['ephemeral_token', 'code'], documented2xx: [] },
  { method: 'POST', url: '/login/change-method/', fields: ['ephemeral_token', 'new_method'], documented2xx: [200] },
  { method: 'POST', url: '/login/resend/', fields: ['ephemeral_token'], documented2xx: [200] },
  { method: 'POST', url: '/token/refresh/', fields: ['refresh'], documented2xx: [] },
  { method: 'POST', url: '/logout/', fields: ['refresh'], documented2xx: [204] },
  { method: 'POST', url: '/registration/', fields: ['username', 'email', 'password'], documented2xx: [201] },
  { method: 'POST', url: '/mfa/', fields: ['method'], documented2xx: [] },
  { method: 'POST', url: '/mfa/confirm/', fields: ['method', 'code'], documented2xx: [] },
  { method: 'POST', url: '/mfa/primary/', fields: ['method', 'primary_code'], documented2xx: [] },
  { method: 'POST', url: '/mfa/deactivate/', fields: ['method', 'code'], documented2xx: [] },
  { method: 'POST', url: '/mfa/delete/', fields: ['method', 'code'], documented2xx: [] },
  { method: 'POST', url: '/mfa/send/', fields: ['method'], documented2xx: [200] },
  { method: 'POST', url: '/mfa/backup-codes/', fields: ['method', 'code'], documented2xx: [] },
  { method: 'GET', url: '/user/', fields: [], documented2xx: [200] },
  { method: 'GET', url: '/mfa/', fields: [], documented2xx: [200] },
]

const HOSTILE_STRINGS = [
  '', ' ', '\u0000', '\u0000123456', '١٢٣٤٥٦', '۱۲۳۴۵۶', '１２３４５６', '𝟏𝟐𝟑𝟒𝟓𝟔', '12345６', ' 123456', '123456 ', '+123456', '-12345',
  '1e5', '0x1E240', '\ud800', '\udfff\ud800', '😀😀😀', 'ǅ', 'ß', 'ſ', 'İ', '\u202e654321', '<script>alert(1)</script>',
  "' OR '1'='1", '"; DROP TABLE auth_kit_user; --', '../../../etc/passwd', '%00', '${7*7}', '{{7*7}}', '__proto__', 'constructor',
  'prototype', 'toString', 'hasOwnProperty', 'app\u0000', 'APP', 'app ', 'email', 'Bearer x', 'null', 'undefined', 'NaN',
  'ABCD-EFGH-JKMN-PQRS', 'abcd efgh jkmn pqrs', 'ILOU-ILOU-ILOU-ILOU', '----------------', 'A'.repeat(65), 'A'.repeat(10_000),
]
const CONTENT_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'application/JSON', 'text/plain', 'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/vnd.api+json', 'text/html', '',
]
const RAW_BODIES = [
  '{', '{"a":', '}', 'null', '[]', '[{}]', '"a string"', '1', 'true', '\ufeff{}', '{"code":"123456",}', "{'code':'1'}",
  '{"__proto__":{"polluted":"yes"}}', '{"constructor":{"prototype":{"polluted":"yes"}}}',
  '{"method":"app","__proto__":{"isActive":true,"polluted":"yes"}}', '{"a":1,"a":2}', '[1,2,3]', '\u0000', 'NaN', '{"code":1e999}',
  '{"username":{"$gt":""},"password":{"$gt":""}}', '{"method":{"toString":"app"}}', `{"x":${'['.repeat(2000)}${']'.repeat(2000)}}`,
]

/**
 * Step 1 from a client address the fuzzer never uses. Since 0.2 (SPEC rule 13, section 12) the
 * fuzzer's wrong passwords throttle step 1 from its own address (127.0.0.1, answered 429
 * AUTH_KIT_LOGIN_THROTTLED, which the fuzzer accepts as a 4xx); another address is not slowed.
 */
async function startLoginElsewhere (app: FastifyInstance, user: { username: string, password: string }): Promise<string> {
  return (await startLogin(app, user, { from: '192.0.2.10' })).ephemeral_token
}

t.test(`${REQUESTS} hostile requests (seed ${SEED}) get only 4xx or documented 2xx answers and change nothing`, async (t) => {
  const clock = manualClock()
  const sms = recordingSmsHandler()
  const app = await buildApp({ now: clock.now, mfa: { handlers: [AppHandler, sms.Handler], lockoutThreshold: 1_000_000 } })
  t.teardown(() => app.close())
  const user = await userWithAppAndSms(app, clock, sms)
  const other = await userWithAppAndSms(app, clock, sms)
  // A spent backup code: the fuzzer may send it, and it must stay spent.
  const spentBackup = other.backupCodes[0]
  t.equal((await post(app, '/login/verify/', { ephemeral_token: await loginToken(app, other), code: spentBackup })).status, 200)
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort()
  const methodsBefore = (await get(app, '/mfa/', user.access)).body
  const otherBefore = (await get(app, '/mfa/', other.access)).body
  const spentRefresh = user.refresh
  t.equal((await post(app, '/token/refresh/', { refresh: spentRefresh })).status, 200)

  // Codes that would be right: the fuzzer never sends them, so "nothing changed" is a fair test.
  const window = [...await totpWindow(user.secret, clock.now()), ...await totpWindow(other.secret, clock.now())]
  const isRight = (s: string) => window.includes(s) || sms.texts.some((m) => m.code === s)
  const safe = (s: string) => (isRight(s) ? wrongCode(...window, ...sms.texts.map((m) => m.code)) : s)

  const rnd = seededRandom(SEED)
  let ephemeral = await loginToken(app, user)
  const randomString = (): string => {
    const len = rnd.pick([1, 6, 6, 16, 19, 40, 300])
    const alphabet = rnd.pick(['0123456789', '0123456789ABCDEFGHJKMNPQRSTVWXYZ-', 'abcdefghijklmnopqrstuvwxyz', '\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669', ' \t\n-_.~!@#$%^&*()'])
    let out = ''
    for (let i = 0; i < len; i++) out += alphabet[rnd.int(alphabet.length)]
    return safe(out)
  }
  const hostileValue = (depth = 0): unknown => {
    switch (rnd.int(12)) {
      case 0: return null
      case 1: return rnd.chance(0.5)
      case 2: return rnd.pick([0, -1, 123456, 1e308, -1e-308, 0.5, Number.MAX_SAFE_INTEGER + 2])
      case 3: return depth > 3 ? [] : Array.from({ length: rnd.int(4) }, () => hostileValue(depth + 1))
      case 4: return depth > 3 ? {} : { [rnd.pick(['a', 'method', 'code', 'toString', 'valueOf'])]: hostileValue(depth + 1) }
      case 5: case 6: return safe(rnd.pick(HOSTILE_STRINGS))
      default: return randomString()
    }
  }
  const plausible = (field: string): unknown => {
    switch (field) {
      case 'username': return rnd.pick([user.username, user.username.toUpperCase(), `${user.username}@example.com`, randomString()])
      case 'password': return rnd.pick([randomString(), 'correct horse battery'.toUpperCase(), `${user.password} `])
      case 'email': return rnd.pick([`${randomString()}@example.com`, 'not-an-email', `${user.username}@example.com`])
      case 'ephemeral_token': return rnd.pick([ephemeral, `${ephemeral}x`, ephemeral.toUpperCase(), user.access, randomString()])
      case 'refresh': return rnd.pick([spentRefresh, `${spentRefresh}=`, randomString()])
      case 'method': case 'new_method': return rnd.pick(['app', 'sms', 'email', 'APP', 'App', 'app ', randomString()])
      default: return rnd.pick([randomString(), 'ABCD-EFGH-JKMN-PQRS', safe('123456'), spentBackup.replace(/-/g, '').toLowerCase()])
    }
  }
  const authHeader = (): string | undefined => rnd.pick([
    undefined, `Bearer ${user.access}`, `Bearer ${user.access}`, `Bearer ${other.access}`, `Bearer ${ephemeral}`, `Bearer ${spentRefresh}`,
    `bearer ${user.access}`, `Bearer ${user.access.slice(0, -3)}abc`, 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz',
    // alg "none", and a token whose header names an unknown key
    `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: user.id, amr: ['pwd', 'mfa'], token_use: 'auth_kit_access', exp: 9e9 })).toString('base64url')}.`,
    `Bearer ${Buffer.from('{"alg":"HS256","kid":"nope"}').toString('base64url')}.${user.access.split('.')[1]}.${user.access.split('.')[2]}`,
    `Bearer ${'x'.repeat(5000)}`,
  ])

  const failures: string[] = []
  const statusCounts = new Map<number, number>()
  for (let i = 0; i < REQUESTS; i++) {
    if (i % 200 === 0) ephemeral = await startLoginElsewhere(app, rnd.chance(0.5) ? user : other)
    const route = rnd.pick(ROUTES)
    let payload: string | undefined
    if (route.method === 'POST') {
      const roll = rnd.next()
      if (roll < 0.15) payload = rnd.pick(RAW_BODIES)
      else if (roll < 0.17) payload = JSON.stringify({ [route.fields[0] ?? 'x']: 'A'.repeat(1_100_000) })
      else {
        const body: Record<string, unknown> = {}
        for (const field of route.fields) {
          const r = rnd.next()
          if (r < 0.55) body[field] = plausible(field)
          else if (r < 0.9) body[field] = hostileValue()
        }
        if (rnd.chance(0.3)) body[rnd.pick(['user_id', 'userId', 'is_active', 'isPrimary', 'extra', 'toString'])] = hostileValue()
        payload = JSON.stringify(body)
        if (rnd.chance(0.15)) payload = payload.replace(/^\{/, rnd.pick(['{"__proto__":{"polluted":"yes"},', '{"constructor":{"prototype":{"polluted":"yes"}},', '{"prototype":{"polluted":"yes"},']))
        if (payload.endsWith(',}')) payload = payload.replace(/,\}$/, '}')
      }
    }
    const headers: Record<string, string> = {}
    const auth = authHeader()
    if (auth !== undefined) headers.authorization = auth
    if (payload !== undefined) {
      const type = rnd.chance(0.8) ? 'application/json' : rnd.pick(CONTENT_TYPES)
      if (type !== '') headers['content-type'] = type
    }
    const url = P + (rnd.chance(0.2) ? route.url.slice(0, -1) : route.url)
    const res = await app.inject({ method: route.method, url, headers, payload })
    statusCounts.set(res.statusCode, (statusCounts.get(res.statusCode) ?? 0) + 1)
    const label = `#${i} ${route.method} ${url} ${res.statusCode} body=${(payload ?? '').slice(0, 120)}`
    if (res.statusCode >= 500) failures.push(`${label} → ${res.body.slice(0, 200)}`)
    else if (res.statusCode < 400 && !route.documented2xx.includes(res.statusCode)) failures.push(`${label} → undocumented success`)
    else if (res.statusCode >= 400) {
      const body = res.json()
      if (typeof body.statusCode !== 'number' || typeof body.message !== 'string') failures.push(`${label} → not the error envelope`)
    }
    if (Object.getOwnPropertyNames(Object.prototype).sort().join() !== prototypeKeys.join() || ({} as Record<string, unknown>).polluted !== undefined) {
      failures.push(`${label} → Object.prototype polluted`)
      break
    }
  }
  t.same(failures, [], `seed ${SEED}: no 5xx, no undocumented 2xx, every error in Fastify's envelope`)
  t.ok([200, 400, 401, 403, 409, 413, 415].every((s) => (statusCounts.get(s) ?? 0) > 0), `a spread of answers: ${JSON.stringify([...statusCounts])}`)
  t.same(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeKeys, 'Object.prototype not polluted')
  t.equal(({} as Record<string, unknown>).polluted, undefined)

  // 0.2 (SPEC section 3, POST /token/refresh/ and POST /logout/; section 9, "Sessions"): the fuzzer
  // presents user's spent refresh token, which ends user's session (reuse detection, or a logout
  // with the caller's token), and user.access with it. So the state is read with a fresh login.
  const login = await post(app, '/login/verify/', { ephemeral_token: await startLoginElsewhere(app, user), code: await totp(user.secret, clock.now()) })
  t.equal(login.status, 200, 'the user can still log in')
  t.same(login.body.user.id, user.id)
  t.same((await get(app, '/mfa/', login.body.access)).body, methodsBefore, 'the user\'s methods and backup codes are unchanged')
  t.same((await get(app, '/mfa/', other.access)).body, otherBefore, 'so are the other user\'s')
})

// Attack: guessing a password at step 1, fast, in parallel, across the
// processes of one service; and locking a user out by guessing from elsewhere.
// Rule 13, on every database the environment has, with two app instances on
// one database standing for two processes.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, manualClock, newUser, P, SECRET, expectError } from '../helpers/app.js'
import { onEveryDialect } from '../helpers/dialects.js'
import { countScrypt, eventLog } from '../helpers/security.js'

const login = { maxFailuresPerClient: 3, maxFailuresPerAddress: 8, failureWindow: 900 }

/** Step 1 from a given client address. */
async function loginFrom (app: FastifyInstance, address: string, username: string, password: string) {
  const res = await app.inject({ method: 'POST', url: `${P}/login/`, payload: { username, password }, remoteAddress: address })
  return { status: res.statusCode, body: res.json(), retryAfter: res.headers['retry-after'] }
}

const statuses = (answers: Array<{ status: number }>) => answers.map((a) => a.status)
const countOf = (answers: Array<{ status: number }>, status: number) => answers.filter((a) => a.status === status).length

await onEveryDialect(t, undefined, async (t, scratch) => {
  const clock = manualClock()
  const log = eventLog()
  const a = await buildApp({ database: scratch.url, now: clock.now, onEvent: log.onEvent, login })
  const b = await buildApp({ database: scratch.url, now: clock.now, onEvent: log.onEvent, login })
  t.teardown(async () => {
    await a.close()
    await b.close()
  })
  const scrypt = countScrypt(t)

  t.test('past maxFailuresPerClient wrong passwords, step 1 from that client answers 429 AUTH_KIT_LOGIN_THROTTLED with Retry-After, without checking the password', async (t) => {
    const user = await newUser(a)
    const attacker = '203.0.113.1'
    // Alternating processes: both count into one database.
    t.same(statuses([
      await loginFrom(a, attacker, user.username, 'guess one'),
      await loginFrom(b, attacker, user.username, 'guess two'),
      await loginFrom(a, attacker, user.username, 'guess three'),
    ]), [401, 401, 401])
    scrypt.reset()
    const throttled = await loginFrom(b, attacker, user.username, user.password)
    t.equal(throttled.status, 429, 'even the right password is refused')
    t.same(throttled.body, { statusCode: 429, code: 'AUTH_KIT_LOGIN_THROTTLED', error: 'Too Many Requests', message: 'Too many wrong passwords from this address. Try again in 15 minutes.' })
    t.equal(throttled.retryAfter, '900', 'Retry-After: the rest of the window')
    t.equal(scrypt.runs, 0, 'no password hash ran')
    const event = log.ofType('login_throttled').at(-1)
    t.same(event && { userId: event.userId, ip: event.ip }, { userId: user.id, ip: attacker }, 'login_throttled names the user and the address')

    clock.advance(600)
    const later = await loginFrom(a, attacker, user.username, 'guess four')
    t.equal(later.status, 429)
    t.equal(later.retryAfter, '300')
    t.equal(later.body.message, 'Too many wrong passwords from this address. Try again in 5 minutes.', 'the message follows the wait')
    clock.advance(300)
    t.equal((await loginFrom(b, attacker, user.username, user.password)).status, 200, 'the window over, the client may log in again')
  })

  t.test('an account\'s username and email share one count: guessing through both gives no more tries', async (t) => {
    const user = await newUser(a)
    const attacker = '198.51.100.77'
    t.same(statuses([
      await loginFrom(a, attacker, user.username, 'guess one'),
      await loginFrom(b, attacker, `${user.username}@example.com`, 'guess two'),
      await loginFrom(a, attacker, user.username.toUpperCase(), 'guess three'),
    ]), [401, 401, 401])
    t.equal((await loginFrom(b, attacker, `${user.username}@example.com`, 'guess four')).status, 429, 'the email meets the count the username made')
  })

  t.test('another client address is not slowed: nobody locks a user out by guessing from elsewhere', async (t) => {
    const user = await newUser(a)
    const attacker = '203.0.113.2'
    for (let i = 0; i < login.maxFailuresPerClient; i++) await loginFrom(a, attacker, user.username, `guess ${i}`)
    t.equal((await loginFrom(b, attacker, user.username, 'one more')).status, 429)
    t.equal((await loginFrom(a, '198.51.100.2', user.username, user.password)).status, 200, 'the user, elsewhere, logs in')
    t.equal((await loginFrom(b, '198.51.100.3', `${user.username}@example.com`, 'a typo')).status, 401, 'a wrong password elsewhere is just wrong')
  })

  t.test('a right password resets that client\'s count', async (t) => {
    const user = await newUser(a)
    const client = '203.0.113.3'
    t.same(statuses([
      await loginFrom(a, client, user.username, 'typo 1'),
      await loginFrom(b, client, user.username, 'typo 2'),
      await loginFrom(a, client, user.username, user.password),
      await loginFrom(b, client, user.username, 'typo 3'),
      await loginFrom(a, client, user.username, 'typo 4'),
      await loginFrom(b, client, user.username, 'typo 5'),
      await loginFrom(a, client, user.username, 'typo 6'),
    ]), [401, 401, 200, 401, 401, 401, 429])
  })

  t.test('an unknown account is counted like a known one, so the answers tell nothing', async (t) => {
    const user = await newUser(a)
    const run = async (address: string, username: string) => {
      const answers = []
      for (let i = 0; i < login.maxFailuresPerClient + 2; i++) answers.push(await loginFrom(i % 2 === 0 ? a : b, address, username, `guess ${i}`))
      return answers
    }
    const known = await run('203.0.113.4', user.username)
    const unknown = await run('203.0.113.5', 'nobody-by-this-name')
    t.same(statuses(known), [401, 401, 401, 429, 429])
    t.same(unknown, known, 'the same statuses, bodies and Retry-After')
    t.equal(log.ofType('login_throttled').filter((e) => e.ip === '203.0.113.5').every((e) => e.userId === null), true, 'the event (not the answer) says the login is unknown')
    // The login is compared as a login is: the same name in capitals is the same client.
    t.equal((await loginFrom(a, '203.0.113.5', 'NOBODY-BY-THIS-NAME', 'guess')).status, 429)
  })

  t.test('past maxFailuresPerAddress wrong passwords from one address, any accounts, step 1 from it answers 429', async (t) => {
    const user = await newUser(a)
    const spray = '203.0.113.6'
    const answers = []
    for (let i = 0; i < login.maxFailuresPerAddress; i++) answers.push(await loginFrom(i % 2 === 0 ? a : b, spray, `sprayed-${i}`, 'Summer2026!'))
    t.same(statuses(answers), Array(login.maxFailuresPerAddress).fill(401))
    const next = await loginFrom(a, spray, user.username, user.password)
    expectError(t, next, 429, 'AUTH_KIT_LOGIN_THROTTLED', 'a fresh account from that address too')
    t.equal(next.retryAfter, '900')
    t.equal((await loginFrom(b, '198.51.100.6', user.username, user.password)).status, 200, 'another address is not slowed')
  })

  t.test('right passwords do not count toward the address limit', async (t) => {
    const user = await newUser(a)
    const office = '203.0.113.7'
    for (let i = 0; i < login.maxFailuresPerAddress - 1; i++) t.equal((await loginFrom(a, office, `typo-${i}`, 'wrong')).status, 401)
    for (let i = 0; i < 5; i++) t.equal((await loginFrom(i % 2 === 0 ? a : b, office, user.username, user.password)).status, 200)
    t.equal((await loginFrom(b, office, 'one-more-typo', 'wrong')).status, 401, 'the last failure the limit allows')
    t.equal((await loginFrom(a, office, user.username, user.password)).status, 429)
  })

  t.test('parallel wrong passwords for one account from one client, on two processes, never pass the limit', async (t) => {
    const user = await newUser(a)
    scrypt.reset()
    const answers = await Promise.all(Array.from({ length: 12 }, async (_, i) => loginFrom(i % 2 === 0 ? a : b, '203.0.113.8', user.username, `parallel guess ${i}`)))
    t.equal(countOf(answers, 401), login.maxFailuresPerClient, 'exactly the limit got their password checked')
    t.equal(countOf(answers, 429), 12 - login.maxFailuresPerClient)
    t.equal(scrypt.runs, login.maxFailuresPerClient, 'one password hash per counted guess, none for the rest')
  })

  t.test('parallel wrong passwords over many accounts from one address, on two processes, never pass the address limit', async (t) => {
    const answers = await Promise.all(Array.from({ length: 16 }, async (_, i) => loginFrom(i % 2 === 0 ? a : b, '203.0.113.9', `parallel-spray-${i}`, 'Winter2026!')))
    t.equal(countOf(answers, 401), login.maxFailuresPerAddress)
    t.equal(countOf(answers, 429), 16 - login.maxFailuresPerAddress)
  })

  t.test('IPv6 clients are counted per /64; an IPv4 address mapped into IPv6 is that IPv4 address', async (t) => {
    const user = await newUser(a)
    t.same(statuses([
      await loginFrom(a, '2001:db8:1:2::1', user.username, 'guess 1'),
      await loginFrom(b, '2001:db8:1:2:ffff::3', user.username, 'guess 2'),
      await loginFrom(a, '2001:0db8:0001:0002:0:0:0:99', user.username, 'guess 3'),
    ]), [401, 401, 401])
    t.equal((await loginFrom(b, '2001:db8:1:2:abcd:1:2:3', user.username, user.password)).status, 429, 'the same /64')
    t.equal((await loginFrom(a, '2001:db8:1:3::1', user.username, user.password)).status, 200, 'the next /64 is another client')

    for (let i = 0; i < login.maxFailuresPerClient; i++) await loginFrom(a, '192.0.2.50', user.username, `guess ${i}`)
    t.equal((await loginFrom(b, '::ffff:192.0.2.50', user.username, user.password)).status, 429)
  })

  t.test('the table keeps live windows only, without a job', async (t) => {
    const db = a.authKit.db
    const rows = async () => Number((await db.selectFrom('auth_kit_login_failure').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
    t.ok(await rows() > 2, 'the tests above left windows')
    clock.advance(login.failureWindow)
    t.equal((await loginFrom(b, '203.0.113.11', 'one-last-typo', 'wrong')).status, 401)
    t.equal(await rows(), 2, 'the expired windows went as the new failure was written: one client and one address')
    const stored = await db.selectFrom('auth_kit_login_failure').select('throttle_key').execute()
    t.notOk(stored.some((r) => r.throttle_key.includes('203.0.113') || r.throttle_key.includes('one-last-typo')), 'keys are hashes: no address or login in the table')
  })
})

t.test('the login.* options are checked at registration, and the error names the option', async (t) => {
  for (const option of ['maxFailuresPerClient', 'maxFailuresPerAddress', 'failureWindow']) {
    for (const bad of [0, -1, 1.5, '5']) {
      await t.rejects(buildApp({ secret: SECRET, login: { [option]: bad } as any }), { message: new RegExp(`option "login\\.${option}"`) }, `${option}: ${JSON.stringify(bad)}`)
    }
  }
})

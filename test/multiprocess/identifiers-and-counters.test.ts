import t from 'tap'
import {
  PASSWORD, appAccount, backupCodeIds, serverDialects, startLogin, tally, uniqueName, withCluster, wrongCodeCount, type Answer,
} from '../helpers/server-process.js'

// Real processes on a shared 2-core machine: minutes under load, not the runner's default 120 s.
t.setTimeout(10 * 60 * 1000)

// Rules 2, 5, 11 and 13 across processes: one account per identifier under
// concurrent registrations, and every failure counter shared through the
// database, so wrong guesses spread over processes get no more tries than
// the limits.


const MAX_PER_TOKEN = 3
const LOCKOUT = 8
const count = (answers: Answer[], code: string) => answers.filter((a) => a.body?.code === code).length
/** A six-digit code that is wrong for any TOTP step of this test's users (random, never sent). */
const wrong = () => String(100000 + Math.floor(Math.random() * 900000))

for (const dialect of serverDialects) {
  await withCluster(t, dialect, 2, { mfa: { maxAttemptsPerToken: MAX_PER_TOKEN, lockoutThreshold: LOCKOUT, backupCodes: { count: 4 } } }, async (t, cluster) => {
    t.test('a username and another account\'s email, registered at once: one account per identifier (rule 11, issue 9 fault 3)', async (t) => {
      const rounds = 3
      const outcomes: string[] = []
      for (let round = 0; round < rounds; round++) {
        const identifier = `${uniqueName('x')}@mail.test`
        const answers = await Promise.all([
          cluster.at(0).post('/registration/', { username: identifier, email: `${uniqueName('a')}@mail.test`, password: PASSWORD }),
          cluster.at(1).post('/registration/', { username: uniqueName('b'), email: identifier, password: PASSWORD }),
        ])
        outcomes.push(tally(answers))
        t.same(answers.map((a) => a.status).sort(), [201, 409], `round ${round + 1}: one 201, one 409 (${tally(answers)})`)
        t.equal(count(answers, 'AUTH_KIT_USERNAME_TAKEN'), 1, `round ${round + 1}: the loser is AUTH_KIT_USERNAME_TAKEN`)
        const winner = answers.find((a) => a.status === 201)
        if (winner !== undefined) {
          const login = await cluster.at(round).post('/login/', { username: identifier, password: PASSWORD })
          t.equal(login.body?.user?.id, winner.body.user.id, `round ${round + 1}: the identifier logs into the account that got it`)
        }
      }
      t.comment(`one account per identifier (username vs email): ${rounds} rounds of 2 parallel registrations on 2 processes: ${outcomes.join('; ')}`)
    })

    t.test('the same name in other case or another Unicode form, registered at once: one account (rule 11)', async (t) => {
      const base = uniqueName('kim')
      const pairs: Array<[string, string]> = [
        [`Case_${base}`, `case_${base}`],
        // Fullwidth letters are the same name after NFKC.
        [`ｋｉｍ_${base}`, `kim_${base}`],
        [`${base}@MAIL.test`, `${base}@mail.TEST`],
      ]
      const outcomes: string[] = []
      for (const [i, [one, other]] of pairs.entries()) {
        const answers = await Promise.all([
          cluster.at(0).post('/registration/', { username: one, email: `${uniqueName('p')}@mail.test`, password: PASSWORD }),
          cluster.at(1).post('/registration/', { username: other, email: `${uniqueName('q')}@mail.test`, password: PASSWORD }),
        ])
        outcomes.push(`${one} / ${other}: ${tally(answers)}`)
        t.same(answers.map((a) => a.status).sort(), [201, 409], `round ${i + 1}: "${one}" and "${other}" at once: one 201, one 409`)
      }
      t.comment(`one account per folded name: 3 rounds of 2 parallel registrations: ${outcomes.join('; ')}`)
    })

    t.test(`wrong codes for one login attempt from every process: at most mfa.maxAttemptsPerToken (${MAX_PER_TOKEN}) are tried`, async (t) => {
      const parallel = 8
      const account = await appAccount(cluster.at(0))
      const token = await startLogin(cluster.at(1), account)
      const answers = await Promise.all(Array.from({ length: parallel }, async (_, i) => cluster.at(i).post('/login/verify/', { ephemeral_token: token, code: wrong() })))
      t.comment(`per-attempt limit: ${parallel} parallel wrong codes on one attempt over 2 processes → ${tally(answers)}`)
      t.ok(count(answers, 'AUTH_KIT_INVALID_CODE') <= MAX_PER_TOKEN, `no more than ${MAX_PER_TOKEN} wrong codes were tried (rule 2)`)
      t.equal(count(answers, 'AUTH_KIT_INVALID_CODE'), MAX_PER_TOKEN, `exactly ${MAX_PER_TOKEN} were tried, as in any one order of the requests: a live attempt is never answered "invalid" (rule 10)`)
      t.equal(count(answers, 'AUTH_KIT_INVALID_CODE') + count(answers, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN'), parallel, 'the rest found the attempt dead')
      t.ok(await wrongCodeCount(cluster.db, account.id) <= MAX_PER_TOKEN, 'the user counter holds only the tries made')
      const right = await cluster.at(0).post('/login/verify/', { ephemeral_token: token, code: account.appBackup.pop() })
      t.equal(right.body?.code, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN', 'a right code on the dead attempt is refused')
    })

    t.test(`wrong codes for one user over attempts and routes from every process: at most mfa.lockoutThreshold (${LOCKOUT}) are tried`, async (t) => {
      const account = await appAccount(cluster.at(1))
      const tokens = await Promise.all([0, 1, 2, 3].map(async (i) => startLogin(cluster.at(i), account)))
      const requests = [
        ...tokens.flatMap((token) => Array.from({ length: MAX_PER_TOKEN }, () => ['/login/verify/', { ephemeral_token: token, code: wrong() }] as const)),
        ['/mfa/delete/', { method: 'app', code: wrong() }] as const,
        ['/mfa/delete/', { method: 'app', code: wrong() }] as const,
        ['/mfa/backup-codes/', { method: 'app', code: wrong() }] as const,
        ['/mfa/backup-codes/', { method: 'app', code: wrong() }] as const,
      ]
      const answers = await Promise.all(requests.map(async ([url, body], i) => cluster.at(i).post(url, body, url.startsWith('/mfa/') ? account.access : undefined)))
      t.comment(`per-user lockout: ${requests.length} parallel wrong codes (4 attempts, 2 routes) over 2 processes → ${tally(answers)}`)
      const lock = await cluster.db.selectFrom('auth_kit_user_lock').selectAll().where('user_id', '=', account.id).executeTakeFirst()
      t.comment(`  then in the database: failures ${String(lock?.failures)}, lock_count ${String(lock?.lock_count)}, locked ${Number(lock?.locked_until ?? 0) > Date.now() ? 'yes' : 'no'}`)
      t.ok(count(answers, 'AUTH_KIT_INVALID_CODE') <= LOCKOUT, `no more than ${LOCKOUT} wrong codes were tried (rule 5)`)
      t.ok(count(answers, 'AUTH_KIT_TOO_MANY_ATTEMPTS') >= 1, 'the user is locked')
      const before = (await backupCodeIds(cluster.db, account.id, 'app')).length
      const right = await cluster.at(0).post('/login/verify/', { ephemeral_token: await startLogin(cluster.at(0), account), code: account.appBackup.pop() })
      t.equal(right.status, 429, 'while locked, even a right code is 429')
      t.equal(right.body?.code, 'AUTH_KIT_TOO_MANY_ATTEMPTS')
      t.ok(Number(right.headers?.get('retry-after')) > 0, 'with Retry-After')
      t.equal((await backupCodeIds(cluster.db, account.id, 'app')).length, before, 'and the refused backup code is not spent (rule 8)')
    })

    t.test('wrong passwords for one account from every process: at most login.maxFailuresPerClient (5) are checked (rule 13)', async (t) => {
      const parallel = 12
      const account = await appAccount(cluster.at(0))
      const answers = await Promise.all(Array.from({ length: parallel }, async (_, i) => cluster.at(i).post('/login/', { username: account.username, password: `wrong password ${i}` })))
      t.comment(`password throttling: ${parallel} parallel wrong passwords for one account over 2 processes → ${tally(answers)}`)
      t.ok(count(answers, 'AUTH_KIT_INVALID_CREDENTIALS') <= 5, 'no more than 5 passwords were checked')
      t.equal(count(answers, 'AUTH_KIT_INVALID_CREDENTIALS') + count(answers, 'AUTH_KIT_LOGIN_THROTTLED'), parallel, 'the rest are 429 AUTH_KIT_LOGIN_THROTTLED')
      const right = await cluster.at(1).post('/login/', { username: account.username, password: account.password })
      t.equal(right.body?.code, 'AUTH_KIT_LOGIN_THROTTLED', 'past the limit, step 1 from this client answers 429 without checking the password')
    })
  })
}

import t from 'tap'
import {
  appAccount, backupCodeIds, latestCode, newAccount, serverDialects, startLogin, tally, totpAt, withCluster,
  type Answer, type Cluster,
} from '../helpers/server-process.js'

// Real processes on a shared 2-core machine: minutes under load, not the runner's default 120 s.
t.setTimeout(10 * 60 * 1000)

// Rules 2, 3, 4 and 10: every single-use secret is used once, even when the
// same secret reaches several server processes at once. Each check sends its
// requests round robin over the processes, all in flight together.

const PARALLEL = 6
const sleep = async (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const wins = (answers: Answer[]) => answers.filter((a) => a.status === 200).length

/** `PARALLEL` login attempts of one account, started on different processes. */
async function attempts (cluster: Cluster, account: Parameters<typeof startLogin>[1]): Promise<string[]> {
  return Promise.all(Array.from({ length: PARALLEL }, async (_, i) => startLogin(cluster.at(i), account)))
}

for (const dialect of serverDialects) {
  // Six logins of one account at once from one address would meet rule 13's
  // per-client limit (a check is counted before its slow hash, so parallel
  // guesses can never pass it): these races are about single use, so it is raised.
  await withCluster(t, dialect, 3, { login: { maxFailuresPerClient: 50 }, mfa: { resendCooldown: 1, backupCodes: { count: 8 } } }, async (t, cluster) => {
    t.test('one backup code, verified at once on every process: exactly one login', async (t) => {
      const account = await appAccount(cluster.at(0))
      const code = account.appBackup.pop()!
      const tokens = await attempts(cluster, account)
      const answers = await Promise.all(tokens.map(async (token, i) => cluster.at(i).post('/login/verify/', { ephemeral_token: token, code })))
      t.comment(`backup code used once: ${PARALLEL} parallel verifies over ${cluster.servers.length} processes → ${tally(answers)}`)
      t.equal(wins(answers), 1, 'exactly one verify succeeds (rule 4)')
      t.same(answers.filter((a) => a.status !== 200).map((a) => a.body?.code), Array(PARALLEL - 1).fill('AUTH_KIT_INVALID_CODE'), 'the others are wrong codes')
      t.equal((await backupCodeIds(cluster.db, account.id, 'app')).length, 6, 'one code spent here, one at setup: 6 of 8 left')
    })

    t.test('one TOTP step, verified at once on every process: exactly one login', async (t) => {
      const account = await appAccount(cluster.at(1))
      const tokens = await attempts(cluster, account)
      const code = await totpAt(account.secret, 1)
      const answers = await Promise.all(tokens.map(async (token, i) => cluster.at(i).post('/login/verify/', { ephemeral_token: token, code })))
      t.comment(`TOTP step used once: ${PARALLEL} parallel verifies → ${tally(answers)}`)
      t.equal(wins(answers), 1, 'exactly one verify succeeds (rule 3)')
      t.same(answers.filter((a) => a.status !== 200).map((a) => a.body?.code), Array(PARALLEL - 1).fill('AUTH_KIT_INVALID_CODE'))
    })

    t.test('one emailed code, verified at once on every process: exactly one login', async (t) => {
      const account = await newAccount(cluster.at(2))
      const before = cluster.mailbox.messages.length
      const created = await cluster.at(2).post('/mfa/', { method: 'email' }, account.access)
      t.equal(created.status, 201)
      t.equal((await cluster.at(0).post('/mfa/confirm/', { method: 'email', code: await latestCode(cluster.mailbox, account.email, before) }, account.access)).status, 200, 'a code mailed by one process confirms on another')
      const tokens = await attempts(cluster, account)
      await sleep(1100) // past the cooldown: send issues a new code, the only one that works
      const mark = cluster.mailbox.messages.length
      const send = await cluster.at(1).post('/mfa/send/', { method: 'email' }, account.access)
      t.equal(send.status, 200)
      const code = await latestCode(cluster.mailbox, account.email, mark)
      const answers = await Promise.all(tokens.map(async (token, i) => cluster.at(i).post('/login/verify/', { ephemeral_token: token, code })))
      t.comment(`emailed code used once: ${PARALLEL} parallel verifies → ${tally(answers)}`)
      t.equal(wins(answers), 1, 'exactly one verify succeeds (rule 3)')
      t.same(answers.filter((a) => a.status !== 200).map((a) => a.body?.code), Array(PARALLEL - 1).fill('AUTH_KIT_INVALID_CODE'))
    })

    t.test('one ephemeral token, verified at once with different right codes: one login, no code spent by the losers', async (t) => {
      const account = await appAccount(cluster.at(0))
      const token = await startLogin(cluster.at(0), account)
      const codes = account.appBackup.splice(0, PARALLEL)
      const answers = await Promise.all(codes.map(async (code, i) => cluster.at(i).post('/login/verify/', { ephemeral_token: token, code })))
      t.comment(`ephemeral token used once: ${PARALLEL} parallel verifies with ${PARALLEL} right backup codes → ${tally(answers)}`)
      t.equal(wins(answers), 1, 'exactly one verify succeeds (rule 2)')
      t.same(answers.filter((a) => a.status !== 200).map((a) => a.body?.code), Array(PARALLEL - 1).fill('AUTH_KIT_INVALID_EPHEMERAL_TOKEN'), 'the others find the attempt used')
      t.equal((await backupCodeIds(cluster.db, account.id, 'app')).length, 6, 'only the winner and the setup login spent a backup code (rule 8)')
    })

    t.test('one refresh token, rotated at once on every process: one new pair, and it works', async (t) => {
      const account = await newAccount(cluster.at(1))
      const answers = await Promise.all(Array.from({ length: PARALLEL }, async (_, i) => cluster.at(i).post('/token/refresh/', { refresh: account.refresh })))
      t.comment(`refresh token used once: ${PARALLEL} parallel refreshes → ${tally(answers)}`)
      t.equal(wins(answers), 1, 'exactly one refresh succeeds')
      t.same(answers.filter((a) => a.status !== 200).map((a) => a.body?.code), Array(PARALLEL - 1).fill('AUTH_KIT_INVALID_REFRESH_TOKEN'))
      const winner = answers.find((a) => a.status === 200)
      if (winner !== undefined) {
        const next = await cluster.at(2).post('/token/refresh/', { refresh: winner.body.refresh })
        t.equal(next.status, 200, 'the losers, inside refreshReuseGrace, revoked nothing: the new token still rotates')
      }
      const live = await cluster.db.selectFrom('auth_kit_refresh_token').select('id').where('user_id', '=', account.id).where('revoked_at', 'is', null).execute()
      t.equal(live.length, 1, 'one live refresh token in the chain')
    })

    t.test('parallel sends for one method on every process: one code sent, the others 429 (rule 5)', async (t) => {
      const account = await newAccount(cluster.at(0))
      const before = cluster.mailbox.messages.length
      t.equal((await cluster.at(0).post('/mfa/', { method: 'email' }, account.access)).status, 201)
      await sleep(1100)
      const mark = cluster.mailbox.messages.length
      const answers = await Promise.all(Array.from({ length: PARALLEL }, async (_, i) => cluster.at(i).post('/mfa/send/', { method: 'email' }, account.access)))
      t.comment(`resend cooldown shared: ${PARALLEL} parallel sends → ${tally(answers)}`)
      t.equal(wins(answers), 1, 'exactly one send within the cooldown')
      t.same(answers.filter((a) => a.status !== 200).map((a) => a.body?.code), Array(PARALLEL - 1).fill('AUTH_KIT_RESEND_TOO_SOON'))
      t.equal(cluster.mailbox.messages.slice(mark).length, 1, 'one mail went out')
      const code = await latestCode(cluster.mailbox, account.email, before)
      t.equal((await cluster.at(1).post('/mfa/confirm/', { method: 'email', code }, account.access)).status, 200, 'and its code is the one that works')
    })
  })
}

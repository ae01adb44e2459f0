import t from 'tap'
import {
  appAccount, appAndEmailAccount, backupCodeIds, latestCode, methodsInDb, newAccount, orphanBackupCodes, serverDialects,
  startLogin, tally, totpAt, withCluster, wrongCodeCount, type Answer, type Cluster, type TwoMethodAccount,
} from '../helpers/server-process.js'
import { secretOf } from '../helpers/app.js'

// Real processes on a shared 2-core machine: minutes under load, not the runner's default 120 s.
t.setTimeout(10 * 60 * 1000)

// Each account holds this many backup codes (fewer than the default 10: each is a slow hash to make).
const BACKUP_CODES = 8

// Rules 1, 4, 6, 8 and 10 under races between server processes: two (or
// more) requests changing one user's methods, sent at once to different
// processes, round after round, with the invariant checked after each round
// in the database and through the API.


/** Rule 1: while the user has an active method, exactly one active method is primary, and login asks for a second step. */
async function checkRule1 (t: Pick<typeof import('tap').default, 'ok' | 'equal'>, cluster: Cluster, account: TwoMethodAccount, round: string): Promise<string> {
  const methods = await methodsInDb(cluster.db, account.id)
  const active = methods.filter((m) => m.active)
  const primaries = methods.filter((m) => m.primary)
  const state = methods.map((m) => `${m.name}${m.active ? '' : ' (inactive)'}${m.primary ? ' primary' : ''}`).join(', ') || 'no methods'
  if (active.length > 0) {
    t.ok(primaries.length === 1 && primaries[0].active, `${round}: exactly one active primary (${state})`)
    const login = await cluster.at(2).post('/login/', { username: account.username, password: account.password })
    t.equal(login.body?.mfa_enabled, true, `${round}: the next login asks for a second step`)
  } else {
    t.equal(primaries.length, 0, `${round}: no method left, none primary`)
  }
  t.equal(await orphanBackupCodes(cluster.db, account.id), 0, `${round}: no backup codes of a deleted method`)
  return state
}

interface Race {
  name: string
  rounds: number
  requests: (a: TwoMethodAccount) => Array<[string, Record<string, string>]>
  /** Answers no serial order of the two requests can give, if any. */
  impossible?: (answers: Answer[]) => string | undefined
}

// Every code sent is right when sent: app backup codes for the app (the
// primary), email backup codes for email.
const races: Race[] = [
  {
    name: 'primary → email against deactivate email (issue 9, fault 1)',
    rounds: 4,
    requests: (a) => [['/mfa/primary/', { method: 'email', primary_code: a.appBackup.pop()! }], ['/mfa/deactivate/', { method: 'email', code: a.emailBackup.pop()! }]],
    // Primary first: email is primary and cannot be deactivated (403). Deactivate first: email is not active (404).
    impossible: ([primary, deactivate]) => primary.status === 200 && deactivate.status === 200 ? 'both 200: email made primary and deactivated' : undefined,
  },
  {
    name: 'primary → email against delete email',
    rounds: 2,
    requests: (a) => [['/mfa/primary/', { method: 'email', primary_code: a.appBackup.pop()! }], ['/mfa/delete/', { method: 'email', code: a.emailBackup.pop()! }]],
  },
  {
    name: 'primary → email against deactivate app',
    rounds: 2,
    requests: (a) => [['/mfa/primary/', { method: 'email', primary_code: a.appBackup.pop()! }], ['/mfa/deactivate/', { method: 'app', code: a.appBackup.pop()! }]],
  },
  {
    name: 'delete the primary (app) against deactivate email',
    rounds: 2,
    requests: (a) => [['/mfa/delete/', { method: 'app', code: a.appBackup.pop()! }], ['/mfa/deactivate/', { method: 'email', code: a.emailBackup.pop()! }]],
  },
  {
    name: 'delete app against delete email',
    rounds: 2,
    requests: (a) => [['/mfa/delete/', { method: 'app', code: a.appBackup.pop()! }], ['/mfa/delete/', { method: 'email', code: a.emailBackup.pop()! }]],
  },
]

for (const dialect of serverDialects) {
  await withCluster(t, dialect, 3, { mfa: { backupCodes: { count: BACKUP_CODES } } }, async (t, cluster) => {
    for (const race of races) {
      t.test(`rule 1 holds after every round: ${race.name}`, async (t) => {
        // Fresh accounts (app primary, email active), made in parallel, one race each.
        const accounts = await Promise.all(Array.from({ length: race.rounds }, async (_, i) => appAndEmailAccount(cluster.at(i), cluster.mailbox)))
        let requests = 0
        const outcomes: string[] = []
        for (const [round, account] of accounts.entries()) {
          const pair = race.requests(account)
          const answers = await Promise.all(pair.map(async ([url, body], i) => cluster.at(round + i).post(url, body, account.access)))
          requests += answers.length
          const state = await checkRule1(t, cluster, account, `round ${round + 1}`)
          outcomes.push(`[${tally(answers)} → ${state}]`)
          t.notOk(answers.some((a) => a.status >= 500 || a.status === 0), `round ${round + 1}: no 500`)
          const impossible = race.impossible?.(answers)
          t.equal(impossible, undefined, `round ${round + 1}: the answers match one order of the two requests`)
        }
        t.comment(`rule 1 (one active primary, login asks a second step): ${race.rounds} rounds of 2 parallel requests on 2 processes (${requests} requests): ${outcomes.join(' ')}`)
      })
    }

    t.test('confirming two methods at once: the user ends with exactly one primary', async (t) => {
      const rounds = 3
      const outcomes: string[] = []
      for (let round = 0; round < rounds; round++) {
        const account = await newAccount(cluster.at(round))
        const app = await cluster.at(round).post('/mfa/', { method: 'app' }, account.access)
        const before = cluster.mailbox.messages.length
        const email = await cluster.at(round).post('/mfa/', { method: 'email' }, account.access)
        t.equal(app.status + email.status, 402, 'both created')
        const mailed = await latestCode(cluster.mailbox, account.email, before)
        const answers = await Promise.all([
          cluster.at(round).post('/mfa/confirm/', { method: 'app', code: await totpAt(secretOf(app.body.setup_data.qr_link)) }, account.access),
          cluster.at(round + 1).post('/mfa/confirm/', { method: 'email', code: mailed }, account.access),
        ])
        // Both confirm, or one lands after the other's commit and meets the
        // second-factor gate (SPEC section 3: a password-only token cannot
        // change a factor once one is active): both are serial outcomes.
        t.ok(answers.some((a) => a.status === 200), `round ${round + 1}: a confirm succeeds`)
        for (const a of answers.filter((a) => a.status !== 200)) t.equal(a.body?.code, 'AUTH_KIT_STEP_UP_REQUIRED', `round ${round + 1}: the other meets the gate`)
        const methods = await methodsInDb(cluster.db, account.id)
        t.equal(methods.filter((m) => m.primary).length, 1, `round ${round + 1}: exactly one primary (${methods.map((m) => `${m.name}${m.primary ? ' primary' : ''}`).join(', ')})`)
        outcomes.push(methods.find((m) => m.primary)?.name ?? 'none')
      }
      t.comment(`rule 1 (the first confirmed is the only primary): ${rounds} rounds of 2 parallel confirms on 2 processes, primary: ${outcomes.join(', ')}`)
    })

    t.test('one emailed code confirming one method on every process: one 200, and no right code counted as wrong', async (t) => {
      const account = await newAccount(cluster.at(0))
      const before = cluster.mailbox.messages.length
      t.equal((await cluster.at(0).post('/mfa/', { method: 'email' }, account.access)).status, 201)
      const code = await latestCode(cluster.mailbox, account.email, before)
      const answers = await Promise.all([0, 1, 2].map(async (i) => cluster.at(i).post('/mfa/confirm/', { method: 'email', code }, account.access)))
      t.comment(`confirm race: 3 parallel confirms with one right code → ${tally(answers)}`)
      t.equal(answers.filter((a) => a.status === 200).length, 1, 'exactly one confirm succeeds')
      // The others find it active (a policy answer, not a wrong code), or, arriving after
      // the winner's commit, meet the second-factor gate of SPEC section 3.
      for (const a of answers.filter((a) => a.status !== 200)) t.match(a.body?.code, /^(AUTH_KIT_METHOD_ALREADY_ACTIVE|AUTH_KIT_STEP_UP_REQUIRED)$/, 'a policy answer, not a wrong code')
      t.equal(await wrongCodeCount(cluster.db, account.id), 0, 'no wrong code counted toward the lockout (rule 5)')
    })

    t.test('a confirm losing to a delete of the same method counts no wrong code (issue 9, fault 8)', async (t) => {
      const rounds = 3
      const outcomes: string[] = []
      for (let round = 0; round < rounds; round++) {
        const account = await appAccount(cluster.at(round))
        const before = cluster.mailbox.messages.length
        const created = await cluster.at(round).post('/mfa/', { method: 'email' }, account.access)
        const code = await latestCode(cluster.mailbox, account.email, before)
        const answers = await Promise.all([
          cluster.at(round).post('/mfa/confirm/', { method: 'email', code }, account.access),
          cluster.at(round + 1).post('/mfa/delete/', { method: 'email', code: created.body.backup_codes[0] }, account.access),
        ])
        outcomes.push(tally(answers))
        t.equal(await wrongCodeCount(cluster.db, account.id), 0, `round ${round + 1}: the right code is not counted as wrong (${tally(answers)})`)
        t.equal(answers[1].status, 204, `round ${round + 1}: the delete happens, before or after the confirm`)
        t.equal(await orphanBackupCodes(cluster.db, account.id), 0, `round ${round + 1}: no orphan backup codes`)
      }
      t.comment(`confirm vs delete: ${rounds} rounds of 2 parallel requests: ${outcomes.join('; ')}`)
    })

    t.test('parallel regenerations of backup codes with different valid codes: one 200, and only its codes work (issue 9, fault 2)', async (t) => {
      const parallel = 5
      const account = await appAccount(cluster.at(1))
      const codes = account.appBackup.splice(0, parallel)
      const answers = await Promise.all(codes.map(async (code, i) => cluster.at(i).post('/mfa/backup-codes/', { method: 'app', code }, account.access)))
      t.comment(`regeneration: ${parallel} parallel regenerations over 3 processes → ${tally(answers)}`)
      t.equal(answers.filter((a) => a.status === 200).length, 1, 'exactly one regeneration succeeds (rule 10)')
      t.same(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body?.code as string}`), Array(parallel - 1).fill('403 AUTH_KIT_INVALID_CODE'), 'the others: their code died with the old set')
      t.equal((await backupCodeIds(cluster.db, account.id, 'app')).length, BACKUP_CODES, `one set of ${BACKUP_CODES} in the database`)
      const winner = answers.find((a) => a.status === 200)
      const oldCode = account.appBackup.pop()!
      t.equal((await cluster.at(2).post('/login/verify/', { ephemeral_token: await startLogin(cluster.at(2), account), code: oldCode })).status, 401, 'a code of the old set is dead')
      if (winner !== undefined) {
        const verify = await cluster.at(0).post('/login/verify/', { ephemeral_token: await startLogin(cluster.at(0), account), code: winner.body.backup_codes[0] })
        t.equal(verify.status, 200, "the winner's codes work")
      }
    })

    t.test('a regeneration racing a delete of the same method: one of them, never both (issue 9, fault 8)', async (t) => {
      const rounds = 3
      const accounts = await Promise.all(Array.from({ length: rounds }, async (_, i) => appAndEmailAccount(cluster.at(i), cluster.mailbox)))
      const outcomes: string[] = []
      for (const [round, account] of accounts.entries()) {
        const answers: Answer[] = await Promise.all([
          cluster.at(round).post('/mfa/backup-codes/', { method: 'email', code: account.emailBackup.pop()! }, account.access),
          cluster.at(round + 1).post('/mfa/delete/', { method: 'email', code: account.emailBackup.pop()! }, account.access),
        ])
        outcomes.push(tally(answers))
        const [regen, del] = answers
        // Both codes belong to the same set: whichever change comes first kills the other's code or method.
        t.notOk(regen.status === 200 && del.status === 204, `round ${round + 1}: no 200 showing codes of a method deleted by a request that raced it (${tally(answers)})`)
        t.ok(regen.status === 200 || del.status === 204, `round ${round + 1}: one of them succeeds`)
        t.equal(await orphanBackupCodes(cluster.db, account.id), 0, `round ${round + 1}: no orphan backup-code rows`)
        const email = (await methodsInDb(cluster.db, account.id)).find((m) => m.name === 'email')
        if (email !== undefined) t.equal((await backupCodeIds(cluster.db, account.id, 'email')).length, BACKUP_CODES, `round ${round + 1}: the method that stayed has its full new set`)
        await checkRule1(t, cluster, account, `round ${round + 1}`)
      }
      t.comment(`regeneration vs delete: ${rounds} rounds of 2 parallel requests: ${outcomes.join('; ')}`)
    })
  })
}

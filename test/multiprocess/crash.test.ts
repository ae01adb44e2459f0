import t from 'tap'
import {
  appAccount, backupCodeIds, methodsInDb, newAccount, orphanBackupCodes, serverDialects, startLogin, startServer,
  startStalledSmtp, tally, type Answer, type ServerProcess,
} from '../helpers/server-process.js'
import { startSmtp, codeIn, recipientOf, type Mailbox } from '../helpers/smtp.js'
import { openDatabase } from '../../src/db/connect.js'

// Real processes on a shared 2-core machine: minutes under load, not the runner's default 120 s.
t.setTimeout(10 * 60 * 1000)

// Rule 10: "a crash of a process at any point leaves no half-made record",
// with rule 8 ("failures change nothing"). A server process is killed with
// SIGKILL while requests are in flight; a fresh process on the same database
// then finds, for every user touched:
//   (a) email setup killed while the mail server stalls: no email method, and
//       a retry creates it AND really sends a code that confirms it;
//   (b) regeneration of backup codes: either the old set, complete, with the
//       spent code still working (the change never happened), or a complete
//       new set with every old code dead (it happened; if the answer got
//       out, its codes work) — never a spent code without a new set;
//   (c) refresh rotation: exactly one live refresh token in the chain, the old
//       one (it still works) or the new one (if the answer got out, it works).
// Several requests per killed process, started a little apart, so the kill
// lands at different points of their work.

const sleep = async (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function mailTo (mailbox: Mailbox, address: string, after: number, waitMs = 5000): Promise<string | undefined> {
  for (let waited = 0; waited <= waitMs; waited += 100) {
    const mail = mailbox.messages.slice(after).find((m) => recipientOf(m) === address)
    if (mail !== undefined) return codeIn(mail)
    await sleep(100)
  }
  return undefined
}

/** Sends `count` requests `gapMs` apart to `victim`, kills it `killAfterMs` after the first, and returns what answered. */
async function killMidway (victim: ServerProcess, count: number, gapMs: number, killAfterMs: number, send: (i: number) => Promise<Answer>): Promise<Answer[]> {
  const inFlight: Array<Promise<Answer>> = []
  const started = Date.now()
  const killer = (async () => { await sleep(killAfterMs); await victim.kill('SIGKILL') })()
  for (let i = 0; i < count; i++) {
    inFlight.push(send(i))
    await sleep(gapMs)
  }
  await killer
  const answers = await Promise.all(inFlight)
  void started
  return answers
}

for (const dialect of serverDialects) {
  const scratch = await dialect.create()
  if ('unavailable' in scratch) {
    t.test(dialect.name, { skip: `${dialect.name} skipped: ${scratch.unavailable}` }, async () => {})
    continue
  }

  t.test(`${dialect.name}: a server process killed mid-request leaves nothing half-made`, async (t) => {
    const mailbox = await startSmtp()
    const stalled = await startStalledSmtp()
    const processes: ServerProcess[] = []
    const { db } = await openDatabase(scratch.url)
    t.teardown(async () => {
      await Promise.all(processes.map(async (p) => p.kill('SIGKILL')))
      await db.destroy()
      await stalled.close()
      await mailbox.close()
      await scratch.drop()
    })
    const start = async (smtpPort: number, smtpTimeout = 5) => {
      const server = await startServer({ database: scratch.url, smtpPort, smtpTimeout })
      processes.push(server)
      return server
    }
    const helper = await start(mailbox.port)
    const [mailVictim, regenVictim, refreshVictim] = await Promise.all([start(stalled.port, 120), start(mailbox.port), start(mailbox.port)])

    // Who is touched, and what they hold, before the kills.
    const mailUsers = await Promise.all([0, 1, 2].map(async () => newAccount(helper)))
    const regenUsers = await Promise.all([0, 1, 2, 3, 4, 5].map(async () => appAccount(helper)))
    const refreshUsers = await Promise.all([0, 1, 2, 3, 4, 5].map(async () => newAccount(helper)))

    // How long each request takes on the (warmed-up) victim when nothing goes wrong, to aim the kills.
    const probe = await appAccount(helper)
    let t0 = Date.now()
    await regenVictim.post('/mfa/backup-codes/', { method: 'app', code: probe.appBackup.pop() }, probe.access)
    t0 = Date.now()
    await regenVictim.post('/mfa/backup-codes/', { method: 'app', code: probe.appBackup.pop() }, probe.access)
    const regenMs = Date.now() - t0
    const rotated = await refreshVictim.post('/token/refresh/', { refresh: probe.refresh })
    t0 = Date.now()
    await refreshVictim.post('/token/refresh/', { refresh: rotated.body.refresh })
    const refreshMs = Date.now() - t0

    const oldSets = await Promise.all(regenUsers.map(async (u) => backupCodeIds(db, u.id, 'app')))
    const spent = regenUsers.map((u) => u.appBackup.pop()!)

    // (a) email setup, with the mail server accepting and never answering.
    const mailAnswers = mailUsers.map(async (u) => mailVictim.post('/mfa/', { method: 'email' }, u.access))
    for (let i = 0; i < 100 && stalled.connections() < mailUsers.length; i++) await sleep(50)
    t.equal(stalled.connections(), mailUsers.length, 'every setup is waiting on the stalled mail server')
    await mailVictim.kill('SIGKILL')
    t.ok((await Promise.all(mailAnswers)).every((a) => a.status === 0), 'the killed process answered none of them')

    // (b) and (c): several requests a little apart, the kill in the middle of them.
    // The kill comes two request-times after the first: the early ones are done or finishing,
    // the middle ones mid-way, the last ones just arrived (the machine's load moves all of this).
    const regenAnswers = await killMidway(regenVictim, regenUsers.length, Math.max(5, Math.round(regenMs / 2)), Math.round(regenMs * 2),
      async (i) => regenVictim.post('/mfa/backup-codes/', { method: 'app', code: spent[i] }, regenUsers[i].access))
    const refreshAnswers = await killMidway(refreshVictim, refreshUsers.length, Math.max(2, Math.round(refreshMs / 2)), Math.round(refreshMs * 2),
      async (i) => refreshVictim.post('/token/refresh/', { refresh: refreshUsers[i].refresh }))
    t.comment(`killed: email setup (3 in flight, stalled SMTP); regeneration (${regenUsers.length} in flight, ~${regenMs} ms each) → ${tally(regenAnswers)}; refresh (${refreshUsers.length} in flight, ~${refreshMs} ms each) → ${tally(refreshAnswers)}`)

    // Everything below is seen through a process started after the crash.
    const fresh = await start(mailbox.port)

    t.test('(a) email setup killed while the mail server stalls: no method, and a retry really sends a code', async (t) => {
      for (const [i, u] of mailUsers.entries()) {
        t.same((await methodsInDb(db, u.id)).map((m) => m.name), [], `user ${i + 1}: no email method was left behind`)
        t.equal(await orphanBackupCodes(db, u.id), 0, `user ${i + 1}: no backup codes left behind`)
        let before = mailbox.messages.length
        let retry = await fresh.post('/mfa/', { method: 'email' }, u.access)
        if (retry.status === 429) {
          // The dead process's send still holds its claim until its delivery
          // time would have run out: the honest answer is "not now" (nothing
          // changed, Retry-After), never a 201 that says a code was sent.
          t.equal(retry.body?.code, 'AUTH_KIT_RESEND_TOO_SOON', `user ${i + 1}: a retry inside the dead send's delivery time is told to wait`)
          t.equal(mailbox.messages.length, before, `user ${i + 1}: and nothing claims to be sent`)
          await sleep(Number(retry.headers?.get('retry-after') ?? 15) * 1000)
          before = mailbox.messages.length
          retry = await fresh.post('/mfa/', { method: 'email' }, u.access)
        }
        t.equal(retry.status, 201, `user ${i + 1}: the retry creates the method`)
        const code = await mailTo(mailbox, u.email, before)
        t.ok(code !== undefined, `user ${i + 1}: and a code is really sent (no cooldown left by the killed setup)`)
        if (code !== undefined) t.equal((await fresh.post('/mfa/confirm/', { method: 'email', code }, u.access)).status, 200, `user ${i + 1}: which confirms it`)
      }
    })

    t.test('(b) regeneration killed midway: the old set whole or a new set whole, never a spent code without a set', async (t) => {
      const outcomes: string[] = []
      for (const [i, u] of regenUsers.entries()) {
        const now = await backupCodeIds(db, u.id, 'app')
        const kept = now.filter((id) => oldSets[i].includes(id)).length
        const whole = kept === oldSets[i].length && now.length === oldSets[i].length
        const replaced = kept === 0 && now.length === 10
        outcomes.push(whole ? 'rolled back' : replaced ? `committed, ${regenAnswers[i].status === 200 ? 'answered' : 'unanswered'}` : `HALF-MADE (${kept} of ${oldSets[i].length} old codes kept, ${now.length} in all)`)
        t.ok(whole || replaced, `user ${i + 1}: the old set whole (${oldSets[i].length}) or a new set whole (10), found ${kept} old codes of ${now.length}`)
        if (whole) {
          t.not(regenAnswers[i].status, 200, `user ${i + 1}: no 200 for a change that did not happen`)
          const verify = await fresh.post('/login/verify/', { ephemeral_token: await startLogin(fresh, u), code: spent[i] })
          t.equal(verify.status, 200, `user ${i + 1}: the change never happened, so the code it spent still works`)
        } else if (regenAnswers[i].status === 200) {
          const verify = await fresh.post('/login/verify/', { ephemeral_token: await startLogin(fresh, u), code: regenAnswers[i].body.backup_codes[0] })
          t.equal(verify.status, 200, `user ${i + 1}: the codes the answer showed work`)
        }
        t.equal(await orphanBackupCodes(db, u.id), 0, `user ${i + 1}: no orphan backup codes`)
      }
      t.comment(`regeneration outcomes after the kill: ${outcomes.join(', ')}`)
    })

    t.test('(c) refresh rotation killed midway: one live token in the chain, and it is the one the client can hold', async (t) => {
      const outcomes: string[] = []
      for (const [i, u] of refreshUsers.entries()) {
        const live = await db.selectFrom('auth_kit_refresh_token').select(['id', 'created_at']).where('user_id', '=', u.id).where('revoked_at', 'is', null).execute()
        t.equal(live.length, 1, `user ${i + 1}: exactly one live refresh token in the chain (found ${live.length})`)
        if (live.length !== 1) outcomes.push(`HALF-MADE (${live.length} live tokens)`)
        const answered = refreshAnswers[i].status === 200
        if (answered) {
          outcomes.push('rotated, answered')
          t.equal((await fresh.post('/token/refresh/', { refresh: refreshAnswers[i].body.refresh })).status, 200, `user ${i + 1}: the new refresh token the answer carried works`)
        } else {
          const old = await fresh.post('/token/refresh/', { refresh: u.refresh })
          outcomes.push(old.status === 200 ? 'rolled back' : 'rotated, unanswered')
          // Rotated without an answer: the client never saw the new token and logs in again (password still works).
          if (old.status !== 200) t.equal((await fresh.post('/login/', { username: u.username, password: u.password })).status, 200, `user ${i + 1}: the account still logs in`)
        }
      }
      t.comment(`refresh outcomes after the kill: ${outcomes.join(', ')}`)
    })
  })
}

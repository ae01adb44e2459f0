import t from 'tap'
import { AppHandler, PasskeyHandler } from '../../src/index.js'
import { buildApp, expectError, get, manualClock, newUser, post } from '../helpers/app.js'
import { onEveryDialect } from '../helpers/dialects.js'
import { SoftwareAuthenticator } from '../helpers/authenticator.js'
import { PASSKEY_ORIGIN, sendChallenge, startPasskeyLogin, webauthnOption } from '../helpers/passkeys.js'

// SPEC section 10 and rule 10: passkey challenges live in the database, so
// several processes share them. Two apps on one database stand for two
// processes; the same flow runs on SQLite, PostgreSQL and MySQL/MariaDB.

t.setTimeout(5 * 60 * 1000)

await onEveryDialect(t, undefined, async (t, scratch) => {
  const clock = manualClock()
  const options = { database: scratch.url, now: clock.now, webauthn: webauthnOption, mfa: { handlers: [AppHandler, PasskeyHandler] } }
  const one = await buildApp(options)
  const two = await buildApp(options)
  t.teardown(async () => {
    await one.close()
    await two.close()
  })

  const user = await newUser(one)
  // The longest credential id WebAuthn allows (1023 bytes) fits every database.
  const authenticator = new SoftwareAuthenticator(PASSKEY_ORIGIN, { credentialIdBytes: 1023 })
  let access = user.access

  t.test('set up in one process, confirmed in the other', async (t) => {
    const created = await post(one, '/mfa/', { method: 'passkey' }, user.access)
    t.equal(created.status, 201)
    expectError(t, await post(two, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(created.body.setup_data.options, { origin: 'https://evil.example' }) }, user.access), 403, 'AUTH_KIT_INVALID_CODE', 'another origin')
    const confirmed = await post(two, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(created.body.setup_data.options) }, user.access)
    t.equal(confirmed.status, 200, 'the other process found the setup challenge, still usable after the refusal')
    const stored = await one.authKit.db.selectFrom('auth_kit_credential').selectAll().where('user_id', '=', user.id).executeTakeFirstOrThrow()
    t.equal(stored.credential_id, authenticator.id, `a ${authenticator.id.length}-character credential id is stored whole`)
    const stepped = await post(one, '/login/step-up/', { credential: authenticator.assert(await sendChallenge(two, user.access)) }, user.access)
    t.equal(stepped.status, 200, 'a challenge sent by one process is answered in the other')
    access = stepped.body.access
    t.match((await get(one, '/mfa/', access)).body[1], { name: 'passkey', is_active: true, is_primary: true, requires_dispatch: true })
  })

  t.test('login: the challenge of step 1 in one process is checked in the other, once', async (t) => {
    const step1 = await startPasskeyLogin(one, user)
    expectError(t, await post(two, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: authenticator.assert(step1.challenge, { rpID: 'example.com' }) }), 401, 'AUTH_KIT_INVALID_CODE', 'another rpID')
    const assertion = authenticator.assert(step1.challenge)
    t.equal((await post(two, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: assertion })).status, 200)
    const next = await startPasskeyLogin(two, user)
    expectError(t, await post(one, '/login/verify/', { ephemeral_token: next.ephemeral_token, credential: assertion }), 401, 'AUTH_KIT_INVALID_CODE', 'replayed in the other process')
    expectError(t, await post(one, '/login/verify/', { ephemeral_token: next.ephemeral_token, credential: authenticator.assert(next.challenge, { counter: 1 }) }), 401, 'AUTH_KIT_INVALID_CODE', 'a counter going backwards')
  })

  t.test('parallel answers to one challenge, in two processes: exactly one passes', async (t) => {
    const challenge = await sendChallenge(one, access)
    const answers = [authenticator.assert(challenge), authenticator.assert(challenge), authenticator.assert(challenge), authenticator.assert(challenge)]
    const results = await Promise.all(answers.map(async (credential, i) => post(i % 2 === 0 ? one : two, '/login/step-up/', { credential }, access)))
    t.same(results.map((r) => r.status).sort(), [200, 403, 403, 403], 'one step-up; the others find the challenge used')
  })

  t.test('deleting the passkey removes its credential and challenges', async (t) => {
    await startPasskeyLogin(one, user)
    const deleted = await post(two, '/mfa/delete/', { method: 'passkey', credential: authenticator.assert(await sendChallenge(one, access)) }, access)
    t.equal(deleted.status, 204)
    t.same(await one.authKit.db.selectFrom('auth_kit_credential').selectAll().where('user_id', '=', user.id).execute(), [])
    t.same(await one.authKit.db.selectFrom('auth_kit_challenge').selectAll().where('user_id', '=', user.id).execute(), [])
  })

  t.test('two users confirm one cloned credential at the same moment: one keeps it, the other gets the normal refusal', async (t) => {
    // The check "registered to another account?" runs before the insert, so two
    // confirms in two processes can both pass it; the unique index then decides.
    // Several rounds, so the two transactions do overlap on the servers.
    for (let round = 0; round < 4; round++) {
      const [a, b] = [await newUser(one), await newUser(two)]
      const [setupA, setupB] = [await post(one, '/mfa/', { method: 'passkey' }, a.access), await post(two, '/mfa/', { method: 'passkey' }, b.access)]
      const cloned = new SoftwareAuthenticator(PASSKEY_ORIGIN)
      const results = await Promise.all([
        post(one, '/mfa/confirm/', { method: 'passkey', credential: cloned.register(setupA.body.setup_data.options) }, a.access),
        post(two, '/mfa/confirm/', { method: 'passkey', credential: cloned.register(setupB.body.setup_data.options) }, b.access),
      ])
      t.same(results.map((r) => r.status).sort(), [200, 403], `round ${round}: one confirm passes, the other is refused (no 500)`)
      const loserIndex = results.findIndex((r) => r.status !== 200)
      if (loserIndex === -1) continue
      expectError(t, results[loserIndex], 403, 'AUTH_KIT_INVALID_CODE', `round ${round}: the loser's refusal is a wrong credential`)
      const [winner, loser] = loserIndex === 0 ? [b, a] : [a, b]
      const rows = await one.authKit.db.selectFrom('auth_kit_credential').select(['user_id']).where('credential_id', '=', cloned.id).execute()
      t.same(rows.map((r) => r.user_id), [winner.id], `round ${round}: the credential is stored once, for the winner`)
      t.equal((await one.authKit.db.selectFrom('auth_kit_credential').selectAll().where('user_id', '=', loser.id).execute()).length, 0, `round ${round}: nothing stored for the loser`)
      t.match((await get(one, '/mfa/', loser.access)).body.find((m: { name: string }) => m.name === 'passkey'), { is_setup: true, is_active: false }, `round ${round}: the loser's passkey stays inactive`)
      // The refused answer left the setup challenge usable (rule 8): a passkey of the loser's own confirms.
      const loserSetup = loserIndex === 0 ? setupA : setupB
      const own = await post(one, '/mfa/confirm/', { method: 'passkey', credential: new SoftwareAuthenticator(PASSKEY_ORIGIN).register(loserSetup.body.setup_data.options) }, loser.access)
      t.equal(own.status, 200, `round ${round}: the loser then confirms a passkey of its own with the same setup challenge`)
    }
  })
})

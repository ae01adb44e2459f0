import t from 'tap'
import { CamelCasePlugin, sql, type Kysely } from 'kysely'
import { openDatabase, migrateToLatest } from '../../src/db/connect.js'
import { prepare } from '../../src/db/prepared.js'
import type { Database } from '../../src/db/types.js'
import { onEveryDialect } from '../helpers/dialects.js'

// Hot queries are built and compiled once per database and then run with each
// call's arguments (src/db/prepared.ts). Whatever the dialect, a prepared query
// must answer exactly what the same query built afresh answers.

const lockOf = prepare((db, userId: string) => db.selectFrom('auth_kit_user_lock').selectAll().where('user_id', '=', userId))
const locksOf = prepare((db, userIds: string[]) => db.selectFrom('auth_kit_user_lock').select('user_id').where('user_id', 'in', userIds).orderBy('user_id'))
const countFailure = prepare((db, userId: string, limit: number) => db.updateTable('auth_kit_user_lock')
  .set((eb) => ({ failures: eb('failures', '+', 1) })).where('user_id', '=', userId).where('failures', '<', limit))
const dropLock = prepare((db, userId: string) => db.deleteFrom('auth_kit_user_lock').where('user_id', '=', userId))
// An argument inlined into the SQL text cannot be a parameter: such a query is built every time.
const inlined = prepare((db, userId: string) => db.selectFrom('auth_kit_user_lock').select('user_id').where('user_id', '=', sql.lit(userId)))

async function addLock (db: Kysely<Database>, userId: string, failures = 0): Promise<void> {
  await db.insertInto('auth_kit_user_lock').values({ user_id: userId, failures, lock_count: 0, locked_until: 0 }).execute()
}

await onEveryDialect(t, undefined, async (t, scratch) => {
  const { db } = await openDatabase(scratch.url)
  t.teardown(() => db.destroy())
  await migrateToLatest(db)
  for (const [id, failures] of [['alice', 1], ['bob', 2], ['carol', 3]] as const) await addLock(db, id, failures)

  t.test('each call answers for its own arguments, the same rows as the query built afresh', async (t) => {
    for (const id of ['alice', 'bob', 'carol', 'alice', 'nobody']) {
      const built = await db.selectFrom('auth_kit_user_lock').selectAll().where('user_id', '=', id).executeTakeFirst()
      const prepared = await lockOf.first(db, id)
      t.same(prepared === undefined ? undefined : { ...prepared }, built === undefined ? undefined : { ...built }, id)
    }
    t.equal((await lockOf.all(db, 'bob')).length, 1)
  })

  t.test('a list of another length is another statement, and each is right', async (t) => {
    t.same((await locksOf.all(db, ['carol'])).map((r) => r.user_id), ['carol'])
    t.same((await locksOf.all(db, ['bob', 'alice'])).map((r) => r.user_id), ['alice', 'bob'])
    t.same((await locksOf.all(db, ['carol'])).map((r) => r.user_id), ['carol'], 'the one-item statement is still the one-item statement')
    t.same((await locksOf.all(db, ['alice', 'bob', 'carol'])).map((r) => r.user_id), ['alice', 'bob', 'carol'])
  })

  t.test('writes answer how many rows they touched, and touch only those', async (t) => {
    t.equal(await countFailure.run(db, 'alice', 5), 1)
    t.equal(await countFailure.run(db, 'carol', 3), 0, 'carol is at the limit')
    t.equal(await countFailure.run(db, 'nobody', 5), 0)
    t.equal((await lockOf.first(db, 'alice'))?.failures, 2)
    t.equal((await lockOf.first(db, 'carol'))?.failures, 3)
    t.equal((await lockOf.first(db, 'bob'))?.failures, 2, 'bob untouched')
    await addLock(db, 'dave')
    t.equal(await dropLock.run(db, 'dave'), 1)
    t.equal(await dropLock.run(db, 'dave'), 0)
  })

  t.test('inside a transaction it uses the transaction, and a rollback undoes it', async (t) => {
    await t.rejects(db.transaction().execute(async (trx) => {
      t.equal(await countFailure.run(trx, 'bob', 10), 1)
      t.equal((await lockOf.first(trx, 'bob'))?.failures, 3, 'the transaction sees its own write')
      throw new Error('roll back')
    }), /roll back/)
    t.equal((await lockOf.first(db, 'bob'))?.failures, 2)
  })

  t.test('on an instance with a plugin, the plugin still sees every query and result', async (t) => {
    const camel = db.withPlugin(new CamelCasePlugin()) as unknown as Kysely<Database>
    t.same({ ...(await lockOf.first(camel, 'carol')) }, { userId: 'carol', failures: 3, lockCount: 0, lockedUntil: 0 }, 'result keys are camel case')
    t.same({ ...(await lockOf.first(db, 'carol')) }, { user_id: 'carol', failures: 3, lock_count: 0, locked_until: 0 }, 'the plain instance is not affected')
  })

  t.test('an argument that cannot be a parameter makes the query be built every time', async (t) => {
    t.same((await inlined.all(db, 'alice')).map((r) => r.user_id), ['alice'])
    t.same((await inlined.all(db, 'bob')).map((r) => r.user_id), ['bob'])
  })
})

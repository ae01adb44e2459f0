import t from 'tap'
import type { KyselyPlugin, RootOperationNode } from 'kysely'
import { migrations } from '../../migrations/index.js'
import { openDatabase } from '../../src/db/connect.js'
import { buildApp, get, newUser, post } from '../helpers/app.js'
import { dialects } from '../helpers/dialects.js'

// Real processes on a shared 2-core machine: minutes under load, not the runner's default 120 s.
t.setTimeout(10 * 60 * 1000)

// A process killed during the very first migration: on MySQL/MariaDB DDL is
// not transactional, so some tables stay behind while the migration is not
// recorded. The next start must run it again and end with a working
// database, not "table already exists" at every start.

/** Lets the first `allowed` CREATE TABLE / CREATE INDEX statements through, then fails like a dying process. */
class DieAfterDdl implements KyselyPlugin {
  private seen = 0
  constructor (private readonly allowed: number) {}
  transformQuery ({ node }: { node: RootOperationNode }): RootOperationNode {
    if (node.kind === 'CreateTableNode' || node.kind === 'CreateIndexNode') {
      if (++this.seen > this.allowed) throw new Error('killed')
    }
    return node
  }

  async transformResult<R> ({ result }: { result: R }): Promise<R> { return result }
}

// 0001 creates 7 tables and 4 indexes: stop after 1, 2, 4, 6, 8 and 10 of them.
const stops = [1, 2, 4, 6, 8, 10]

for (const dialect of dialects) {
  t.test(dialect.name, async (t) => {
    for (const allowed of stops) {
      const scratch = await dialect.create()
      if ('unavailable' in scratch) {
        t.test(`${dialect.name} runs`, { skip: scratch.unavailable }, async () => {})
        return
      }
      t.test(`killed after ${allowed} DDL statements of 0001, the next start works`, async (t) => {
        t.teardown(() => scratch.drop())
        const { db: plain } = await openDatabase(scratch.url)
        const dying = plain.withPlugin(new DieAfterDdl(allowed))
        await t.rejects(migrations['0001_initial'].up(dying), /killed/, 'the first run dies part-way')
        const left = (await plain.introspection.getTables()).map((table) => table.name).filter((name) => name.startsWith('auth_kit_'))
        await plain.destroy()
        t.comment(`left behind: ${left.join(', ') || 'nothing (transactional DDL or the first statement)'}`)

        const app = await buildApp({ database: scratch.url })
        t.teardown(() => app.close())
        const user = await newUser(app)
        const created = await post(app, '/mfa/', { method: 'app' }, user.access)
        t.equal(created.status, 201, 'every table works after the second start')
        t.equal(created.body.backup_codes.length, 10)
        t.equal((await get(app, '/mfa/', user.access)).body[0].backup_codes_remaining, 10)
        const again = await buildApp({ database: scratch.url })
        await again.close()
        t.pass('and a third start finds nothing to do')
      })
    }
  })
}


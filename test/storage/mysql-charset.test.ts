import t from 'tap'
import { Kysely, MysqlDialect, sql } from 'kysely'
import { createPool } from 'mysql2'
import { migrateAuthKit } from '../../src/index.js'
import { buildApp, post } from '../helpers/app.js'
import { mysqlDatabaseWithCharset, mysqlQuery } from '../helpers/scratch.js'

// Real processes on a shared 2-core machine: minutes under load, not the runner's default 120 s.
t.setTimeout(10 * 60 * 1000)

// Rule 11 on MySQL/MariaDB: whatever the database's default character set,
// the plugin's tables hold any Unicode (emoji too) without a 500, and the
// database's collation never folds case or accents: identifiers are compared
// as the plugin folds them, the same on every database.

const password = 'correct horse battery'

for (const charset of ['latin1', 'utf8mb3']) {
  const scratch = await mysqlDatabaseWithCharset(charset)
  if ('unavailable' in scratch) {
    t.test(`a ${charset} database`, { skip: scratch.unavailable }, async () => {})
    continue
  }

  t.test(`a database whose default character set is ${charset}`, async (t) => {
    const app = await buildApp({ database: scratch.url })
    t.teardown(async () => {
      await app.close()
      await scratch.drop()
    })

    t.test('every auth_kit_ table is utf8mb4 with the binary collation', async (t) => {
      const tables = await mysqlQuery<{ TABLE_NAME: string, TABLE_COLLATION: string }>(scratch.name,
        "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'auth\\_kit\\_%'")
      t.ok(tables.length >= 9, `${tables.length} tables, the bookkeeping ones included`)
      for (const table of tables) t.equal(table.TABLE_COLLATION, 'utf8mb4_bin', table.TABLE_NAME)
      const columns = await mysqlQuery<{ n: number }>(scratch.name,
        "SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'auth\\_kit\\_%' AND CHARACTER_SET_NAME IS NOT NULL AND COLLATION_NAME <> 'utf8mb4_bin'")
      t.equal(Number(columns[0].n), 0, 'no text column keeps the database default')
    })

    t.test('an emoji username registers and logs in, no 500', async (t) => {
      const username = 'fox🦊_😀'
      const reg = await post(app, '/registration/', { username, email: 'fox@example.com', password })
      t.equal(reg.status, 201)
      t.equal(reg.body.user.username, username, 'stored as sent, not as ???')
      const login = await post(app, '/login/', { username, password })
      t.equal(login.status, 200)
      t.equal(login.body.user.username, username)
      const wrong = await post(app, '/login/', { username: 'fox🦊_😁', password })
      t.equal(wrong.status, 401, 'another emoji is another name')
    })

    t.test('"ádmin" and "admin" are two accounts, each logging into its own', async (t) => {
      const accented = await post(app, '/registration/', { username: 'ádmin', email: 'accented@example.com', password })
      const plain = await post(app, '/registration/', { username: 'admin', email: 'plain@example.com', password: 'another password' })
      t.equal(accented.status, 201)
      t.equal(plain.status, 201, 'the collation does not fold the accent into a collision')
      t.equal((await post(app, '/login/', { username: 'ádmin', password })).body.user?.id, accented.body.user.id)
      t.equal((await post(app, '/login/', { username: 'admin', password: 'another password' })).body.user?.id, plain.body.user.id)
      t.equal((await post(app, '/login/', { username: 'admin', password })).status, 401, "ádmin's password does not open admin")
    })

    t.test('a table a later migration creates with a plain createTable is converted too', async (t) => {
      const db = new Kysely<any>({ dialect: new MysqlDialect({ pool: createPool({ uri: scratch.url }) }) })
      t.teardown(() => db.destroy())
      await db.schema.createTable('auth_kit_later').addColumn('id', 'varchar(64)', (c) => c.primaryKey()).addColumn('label', 'varchar(255)').execute()
      const before = await mysqlQuery(scratch.name, "SELECT TABLE_COLLATION AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'auth_kit_later'")
      t.not(before[0].c, 'utf8mb4_bin', `created with the database default (${before[0].c})`)
      await migrateAuthKit(db)
      const after = await mysqlQuery(scratch.name, "SELECT TABLE_COLLATION AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'auth_kit_later'")
      t.equal(after[0].c, 'utf8mb4_bin', 'the migration runner converts it')
      await sql`INSERT INTO auth_kit_later (id, label) VALUES ('1', ${'🦊'})`.execute(db)
      t.pass('an emoji fits')
    })
  })
}

// Rule 11: usernames and emails compare after NFKC and lower-casing, the same
// on every database (never by its collation); a username never equals another
// account's email, even when both are registered at once from two processes.
import t from 'tap'
import { Kysely, Migrator } from 'kysely'
import type { FastifyInstance } from 'fastify'
import { buildApp, get, post, expectError } from './helpers/app.js'
import { dialects, onEveryDialect } from './helpers/dialects.js'
import { openDatabase } from '../src/db/connect.js'
import { migrations } from '../migrations/index.js'

const password = 'correct horse battery'

async function register (app: FastifyInstance, username: string, email: string) {
  return post(app, '/registration/', { username, email, password })
}

/** Step 1 and the account it reached (every user here logs in in one step). */
async function whoLogsIn (app: FastifyInstance, login: string): Promise<{ status: number, user?: Record<string, string> }> {
  const res = await post(app, '/login/', { username: login, password })
  return { status: res.status, user: res.body?.user }
}

await onEveryDialect(t, undefined, async (t, scratch) => {
  // Two apps on one database stand for two processes of one service.
  const a = await buildApp({ database: scratch.url })
  const b = await buildApp({ database: scratch.url })
  t.teardown(async () => {
    await a.close()
    await b.close()
  })

  t.test('ádmin and admin are two accounts, each reached by its own name', async (t) => {
    const plain = await register(a, 'admin', 'admin@mail.test')
    const accented = await register(b, 'ádmin', 'accented@mail.test')
    t.equal(plain.status, 201)
    t.equal(accented.status, 201, 'an accent makes another name, whatever the collation')
    t.equal((await whoLogsIn(b, 'admin')).user?.id, plain.body.user.id)
    t.equal((await whoLogsIn(a, 'ádmin')).user?.id, accented.body.user.id)
    t.equal((await whoLogsIn(a, 'ÁDMIN')).user?.id, accented.body.user.id, 'upper case is the same name')
    // The decomposed form (a + combining acute) is the same name after NFKC.
    t.equal((await whoLogsIn(b, 'a\u0301dmin')).user?.id, accented.body.user.id)
  })

  t.test('ＡＤＭＩＮ (full width) and 𝐀𝐝𝐦𝐢𝐧 (mathematical bold) are admin', async (t) => {
    const admin = await whoLogsIn(a, 'admin')
    for (const lookalike of ['ＡＤＭＩＮ', '𝐀𝐝𝐦𝐢𝐧', 'Admin']) {
      const res = await register(b, lookalike, `${Buffer.from(lookalike).toString('hex')}@mail.test`)
      expectError(t, res, 409, 'AUTH_KIT_USERNAME_TAKEN', `registering ${lookalike}`)
      t.equal((await whoLogsIn(a, lookalike)).user?.id, admin.user?.id, `logging in as ${lookalike}`)
    }
    const mail = await register(a, 'someone-else', 'ADMIN@MAIL.TEST')
    t.equal(mail.status, 409, 'the same holds for emails')
  })

  t.test('emoji and other four-byte characters are stored and compared without a 500', async (t) => {
    const fox = await register(a, '🦊Fuchs', 'fox@mail.test')
    t.equal(fox.status, 201)
    t.equal(fox.body.user.username, '🦊Fuchs', 'stored as typed')
    const me = await get(b, '/user/', (await post(b, '/login/', { username: '🦊fuchs', password })).body.access)
    t.same(me.body.user, { id: fox.body.user.id, username: '🦊Fuchs', email: 'fox@mail.test' })
    t.equal((await register(b, '🦊FUCHS', 'fox2@mail.test')).status, 409)
    t.equal((await register(b, '🦁Fuchs', 'lion@mail.test')).status, 201, 'another emoji is another name')
    t.equal((await register(a, '𠜎𠜱', 'cjk@mail.test')).status, 201)
    t.equal((await whoLogsIn(b, '𠜎𠜱')).status, 200)
    const unknown = await whoLogsIn(a, '🐙 nobody 🐙')
    t.equal(unknown.status, 401, 'an unknown emoji login is a plain wrong login')
  })

  t.test('a name that NFKC makes longer than the column is a 400, never a 500', async (t) => {
    // U+FDFA is one character that NFKC spells out in 18.
    const res = await register(a, '\uFDFA'.repeat(20), 'long@mail.test')
    expectError(t, res, 400, 'FST_ERR_VALIDATION')
    t.match(res.body.message, /username/)
    t.equal((await whoLogsIn(b, '\uFDFA'.repeat(20))).status, 401)
    t.equal((await register(b, '\uFDFA', 'short@mail.test')).status, 201, 'one of them fits')
  })

  t.test('a username never equals another account\'s email, in either order', async (t) => {
    t.equal((await register(a, 'carol', 'Carol@Mail.test')).status, 201)
    const res = await register(b, 'CAROL@mail.test', 'other-carol@mail.test')
    expectError(t, res, 409, 'AUTH_KIT_USERNAME_TAKEN')
    t.equal((await register(a, 'dave@mail.test', 'dave@mail.test')).status, 201, 'one account may use one string as both')
    t.equal((await register(b, 'dave2', 'DAVE@MAIL.TEST')).status, 409, 'and then it is taken as an email too')
  })

  t.test('registrations at once on two processes, one wanting as username what the other wants as email: one 201, one 409, and the login reaches the winner', async (t) => {
    for (let round = 0; round < 10; round++) {
      const contested = `x${round}@mail.test`
      const [byName, byMail] = await Promise.all([
        register(a, contested, `name-side-${round}@mail.test`),
        register(b, `mail-side-${round}`, contested.toUpperCase()),
      ])
      t.same([byName.status, byMail.status].sort(), [201, 409], `round ${round}`)
      const winner = byName.status === 201 ? byName : byMail
      const loser = byName.status === 201 ? byMail : byName
      t.equal(loser.body.code, 'AUTH_KIT_USERNAME_TAKEN')
      t.equal((await whoLogsIn(round % 2 === 0 ? a : b, contested)).user?.id, winner.body.user.id)
    }
  })

  t.test('two registrations that each want the other\'s email as username, at once: exactly one account', async (t) => {
    for (let round = 0; round < 5; round++) {
      const [first, second] = await Promise.all([
        register(a, `p${round}@mail.test`, `q${round}@mail.test`),
        register(b, `q${round}@mail.test`, `p${round}@mail.test`),
      ])
      t.same([first.status, second.status].sort(), [201, 409], `round ${round}: no deadlock, no 500`)
    }
  })

  t.test('six registrations of one name in its many forms, at once: one account', async (t) => {
    const forms = ['zoë', 'ZOË', 'zoe\u0308', 'ＺＯË', 'Zoë', 'zoË']
    const answers = await Promise.all(forms.map(async (form, i) => register(i % 2 === 0 ? a : b, form, `zoe-${i}@mail.test`)))
    t.equal(answers.filter((r) => r.status === 201).length, 1)
    t.equal(answers.filter((r) => r.status === 409).length, forms.length - 1)
  })
})

t.test('the migration gives existing accounts their identifiers; where two shared one, the older keeps it', async (t) => {
  for (const dialect of dialects) {
    const scratch = await dialect.create()
    if ('unavailable' in scratch) continue
    t.test(dialect.name, async (t) => {
      const { db } = await openDatabase(scratch.url)
      t.teardown(async () => {
        await db.destroy()
        await scratch.drop()
      })
      // The database as 0.1 left it: the first two migrations, and accounts
      // the old check-then-insert let collide (a race it lost).
      const before = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < '0003'))
      const migrator = new Migrator({ db, provider: { getMigrations: async () => before }, migrationTableName: 'auth_kit_migration', migrationLockTableName: 'auth_kit_migration_lock' })
      t.equal((await migrator.migrateToLatest()).error, undefined)
      const old = { password_hash: 'scrypt$16384$8$1$x$y' }
      await (db as Kysely<any>).insertInto('auth_kit_user').values([
        { id: 'u-older', username: 'Erin', username_key: 'erin', email: 'shared@mail.test', email_key: 'shared@mail.test', created_at: 1, ...old },
        { id: 'u-newer', username: 'shared@mail.test', username_key: 'shared@mail.test', email: 'Frank@mail.test', email_key: 'frank@mail.test', created_at: 2, ...old },
      ]).execute()

      const app = await buildApp({ database: scratch.url })
      t.teardown(() => app.close())
      const rows = await app.authKit.db.selectFrom('auth_kit_user_identifier').selectAll().orderBy('identifier_key').execute()
      t.same(rows.map((r) => [r.identifier_key, r.user_id, r.kind]), [
        ['erin', 'u-older', 'username'],
        ['frank@mail.test', 'u-newer', 'email'],
        ['shared@mail.test', 'u-older', 'email'],
      ])
      t.equal((await app.authKit.users.findByLogin('ERIN'))?.id, 'u-older')
      t.equal((await app.authKit.users.findByLogin('shared@mail.test'))?.id, 'u-older', 'the shared string reaches one account, the older')
      t.equal((await app.authKit.users.findByLogin('frank@MAIL.test'))?.id, 'u-newer', 'the newer keeps its other identifier')
    })
  }
})

t.test('on a MySQL/MariaDB database whose default character set is latin1 or utf8mb3, emoji and accents still work', async (t) => {
  const mysql = dialects.find((d) => d.name === 'mysql')!
  for (const charset of ['latin1', 'utf8mb3']) {
    const scratch = await mysql.create()
    if ('unavailable' in scratch) {
      t.test(charset, { skip: scratch.unavailable }, async () => {})
      continue
    }
    t.test(charset, async (t) => {
      const { default: mysql2 } = await import('mysql2/promise')
      const admin = await mysql2.createConnection({ uri: scratch.url })
      await admin.query(`ALTER DATABASE \`${new URL(scratch.url).pathname.slice(1)}\` CHARACTER SET ${charset}`)
      await admin.end()
      const app = await buildApp({ database: scratch.url })
      t.teardown(async () => {
        await app.close()
        await scratch.drop()
      })
      const fox = await register(app, '🦊Fuchs', 'fox@mail.test')
      t.equal(fox.status, 201)
      t.equal((await whoLogsIn(app, '🦊FUCHS')).user?.username, '🦊Fuchs')
      t.equal((await register(app, 'admin', 'admin@mail.test')).status, 201)
      t.equal((await register(app, 'ádmin', 'accented@mail.test')).status, 201)
      t.equal((await whoLogsIn(app, 'ádmin')).user?.username, 'ádmin')
      t.equal((await whoLogsIn(app, '🐙')).status, 401)
    })
  }
})

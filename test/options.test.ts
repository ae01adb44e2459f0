import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Kysely, SqliteDialect } from 'kysely'
import SQLite from 'better-sqlite3'
import authKitMfa, { AppHandler, EmailHandler, type AuthKitOptions } from '../src/index.js'
import { SECRET, buildApp, get, newUser, post } from './helpers/app.js'

/** The error registration fails with, or null if the plugin loads. */
async function registrationError (options: Record<string, unknown>): Promise<Error | null> {
  const app = Fastify({ logger: false })
  try {
    await app.register(authKitMfa, { database: 'sqlite::memory:', docs: false, ...options } as unknown as AuthKitOptions)
    await app.ready()
    return null
  } catch (err) {
    return err as Error
  } finally {
    await app.close().catch(() => {})
  }
}

function memoryKysely (): Kysely<any> {
  return new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) })
}

t.test('secret', async (t) => {
  t.test('missing: registration fails with a message that names the option', async (t) => {
    const err = await registrationError({})
    t.ok(err)
    t.match(err!.message, /"secret"/)
  })

  t.test('shorter than 32 characters: registration fails', async (t) => {
    const err = await registrationError({ secret: 'x'.repeat(31) })
    t.match(err?.message, /"secret"/)
    t.match(err?.message, /32/)
  })

  t.test('not a string: registration fails', async (t) => {
    t.match((await registrationError({ secret: 12345 }))?.message, /"secret"/)
    t.match((await registrationError({ secret: null }))?.message, /"secret"/)
  })

  t.test('an array: empty or with a short entry fails; of long ones works', async (t) => {
    t.match((await registrationError({ secret: [] }))?.message, /"secret"/)
    t.match((await registrationError({ secret: [SECRET, 'short'] }))?.message, /"secret"/)
    t.equal(await registrationError({ secret: [SECRET, `${SECRET}-older`] }), null)
  })

  t.test('exactly 32 characters works', async (t) => {
    t.equal(await registrationError({ secret: 'x'.repeat(32) }), null)
  })

  t.test('an array rotates keys: tokens made under the older secret keep working, newest first', async (t) => {
    const db = memoryKysely()
    t.teardown(() => db.destroy())
    const older = `${SECRET}-older`
    const before = await buildApp({ secret: older, database: db })
    const user = await newUser(before)
    await before.close()

    const rotated = await buildApp({ secret: [SECRET, older], database: db })
    t.equal((await get(rotated, '/user/', user.access)).status, 200, 'old access token')
    const refreshed = await post(rotated, '/token/refresh/', { refresh: user.refresh })
    t.equal(refreshed.status, 200, 'old refresh token')
    await rotated.close()

    const dropped = await buildApp({ secret: SECRET, database: db })
    t.teardown(() => dropped.close())
    t.equal((await get(dropped, '/user/', user.access)).status, 401, 'a token under a removed secret stops working')
    t.equal((await get(dropped, '/user/', refreshed.body.access)).status, 200, 'one made under the newest works')
  })
})

t.test('a negative number fails registration with a message that names the option', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['tokens.accessTokenExpiry', { tokens: { accessTokenExpiry: -1 } }],
    ['tokens.refreshTokenExpiry', { tokens: { refreshTokenExpiry: -1 } }],
    ['mfa.totpInterval', { mfa: { totpInterval: -30 } }],
    ['mfa.totpValidWindow', { mfa: { totpValidWindow: -1 } }],
    ['mfa.backupCodes.count', { mfa: { backupCodes: { count: -1 } } }],
    ['mfa.backupCodes.length', { mfa: { backupCodes: { length: -16 } } }],
    ['mfa.ephemeralTokenExpiry', { mfa: { ephemeralTokenExpiry: -600 } }],
    ['mfa.emailCodeExpiry', { mfa: { emailCodeExpiry: -600 } }],
    ['mfa.resendCooldown', { mfa: { resendCooldown: -30 } }],
    ['mfa.maxAttemptsPerToken', { mfa: { maxAttemptsPerToken: -5 } }],
    ['mfa.lockoutThreshold', { mfa: { lockoutThreshold: -10 } }],
    ['mfa.lockoutDuration', { mfa: { lockoutDuration: -900 } }],
  ]
  for (const [option, options] of cases) {
    const err = await registrationError({ secret: SECRET, ...options })
    t.ok(err, `${option} is refused`)
    t.match(err?.message, option, `the message names ${option}`)
  }
})

t.test('a count or length that makes no sense fails registration with a message that names the option and its range', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['mfa.backupCodes.count', { mfa: { backupCodes: { count: 0 } } }],
    ['mfa.backupCodes.count', { mfa: { backupCodes: { count: 2.5 } } }],
    ['mfa.backupCodes.count', { mfa: { backupCodes: { count: '10' } } }],
    ['mfa.backupCodes.length', { mfa: { backupCodes: { length: 0 } } }],
    ['mfa.backupCodes.length', { mfa: { backupCodes: { length: 7 } } }],
    ['mfa.maxAttemptsPerToken', { mfa: { maxAttemptsPerToken: 0 } }],
    ['mfa.lockoutThreshold', { mfa: { lockoutThreshold: 0 } }],
    ['login.maxFailuresPerClient', { login: { maxFailuresPerClient: 0 } }],
  ]
  for (const [option, options] of cases) {
    const err = await registrationError({ secret: SECRET, ...options })
    t.ok(err, `${option} ${JSON.stringify(options)} is refused`)
    t.match(err?.message, `"${option}"`, `the message names ${option}`)
    t.match(err?.message, /from \d+ to \d+/, 'and its range')
  }
  t.equal(await registrationError({ secret: SECRET, mfa: { backupCodes: { count: 1, length: 8 } } }), null, 'the least of each works')
})

t.test('an unknown option key fails registration, naming its full path and the key likely meant', async (t) => {
  const cases: Array<[Record<string, unknown>, string, string | undefined]> = [
    [{ mfa: { lockoutTreshold: 3 } }, 'mfa.lockoutTreshold', 'mfa.lockoutThreshold'],
    [{ mfa: { backupCodes: { cuont: 5 } } }, 'mfa.backupCodes.cuont', 'mfa.backupCodes.count'],
    [{ tokens: { accessTokenExpiray: 60 } }, 'tokens.accessTokenExpiray', 'tokens.accessTokenExpiry'],
    [{ login: { failureWindw: 60 } }, 'login.failureWindw', 'login.failureWindow'],
    [{ docs: { routeprefix: '/docs' } }, 'docs.routeprefix', 'docs.routePrefix'],
    [{ email: { transport: { jsonTransport: true }, from: 'a@example.com', timout: 5 } }, 'email.timout', 'email.timeout'],
    [{ webauthn: { rpID: 'example.com', rpName: 'x', origins: ['https://example.com'], origin: 'https://example.com' } }, 'webauthn.origin', 'webauthn.origins'],
    [{ regisration: true }, 'regisration', 'registration'],
    [{ lockoutThreshold: 3 }, 'lockoutThreshold', 'mfa.lockoutThreshold'],
    [{ mfa: { somethingElse: true } }, 'mfa.somethingElse', undefined],
  ]
  for (const [options, option, meant] of cases) {
    const err = await registrationError({ secret: SECRET, ...options })
    t.ok(err, `${option} is refused`)
    t.match(err?.message, `option "${option}"`, `the message names ${option}`)
    if (meant !== undefined) t.match(err?.message, `did you mean ${meant}?`, `and suggests ${meant}`)
    else t.notMatch(err?.message, 'did you mean', 'and suggests nothing far-fetched')
  }
})

t.test('a group of options given as something other than an object fails registration, naming it', async (t) => {
  for (const [option, value] of [['mfa', true], ['tokens', 300], ['email', 'smtp://localhost'], ['webauthn', 'example.com'], ['mfa.backupCodes', 10]] as const) {
    const options = option === 'mfa.backupCodes' ? { mfa: { backupCodes: value } } : { [option]: value }
    t.match((await registrationError({ secret: SECRET, ...options }))?.message, `option "${option}"`, option)
  }
})

t.test('keys Fastify itself takes in plugin options, and the host\'s own objects, are accepted', async (t) => {
  t.equal(await registrationError({ secret: SECRET, prefix: '/auth', logLevel: 'warn', logSerializers: { user: () => 'x' } }), null, 'prefix, logLevel, logSerializers')
  const db = memoryKysely()
  t.teardown(() => db.destroy())
  const transport = { jsonTransport: true, someTransportSetting: 1 }
  t.equal(await registrationError({
    secret: SECRET,
    database: db,
    email: { transport, from: 'no-reply@example.com' },
    mfa: { handlers: [AppHandler, EmailHandler], required: false },
    onEvent: Object.assign(() => {}, { extra: 1 }),
    docs: false,
  }), null, 'a Kysely instance, transport options and handler classes are not looked into')
})

t.test('prefix', async (t) => {
  t.test('one that does not start with "/" fails registration with a message that names it', async (t) => {
    const err = await registrationError({ secret: SECRET, prefix: 'api/auth' })
    t.match(err?.message, /"prefix"/)
  })

  t.test('moves the routes', async (t) => {
    const app = await buildApp({ prefix: '/auth/v2' })
    t.teardown(() => app.close())
    const reg = await app.inject({ method: 'POST', url: '/auth/v2/registration/', payload: { username: 'moved', email: 'moved@example.com', password: 'long enough' } })
    t.equal(reg.statusCode, 201)
    for (const url of ['/auth/v2/login/', '/auth/v2/login']) {
      const res = await app.inject({ method: 'POST', url, payload: { username: 'moved', password: 'long enough' } })
      t.equal(res.statusCode, 200, url)
      t.equal(res.json().mfa_enabled, false)
    }
    const old = await app.inject({ method: 'POST', url: '/api/auth/login/', payload: { username: 'moved', password: 'long enough' } })
    t.equal(old.statusCode, 404, 'the default prefix is free')
  })

  t.test('a trailing slash on the prefix changes nothing', async (t) => {
    const app = await buildApp({ prefix: '/auth/' })
    t.teardown(() => app.close())
    const res = await app.inject({ method: 'POST', url: '/auth/login/', payload: { username: 'nobody', password: 'whatever' } })
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'AUTH_KIT_INVALID_CREDENTIALS')
  })
})

t.test('an email-sending method without email.transport fails registration with a message that names the options', async (t) => {
  const err = await registrationError({ secret: SECRET, mfa: { handlers: [AppHandler, EmailHandler] } })
  t.ok(err)
  t.match(err?.message, /mfa\.handlers/)
  t.match(err?.message, /email\.transport/)
  t.equal(await registrationError({ secret: SECRET, mfa: { handlers: [AppHandler] } }), null, 'the app method alone needs no email')
})

t.test('without email, the methods on offer default to the app method alone', async (t) => {
  const app = await buildApp({})
  t.teardown(() => app.close())
  t.same(app.authKit.handlers.list(), ['app'])
  const user = await newUser(app)
  t.same((await get(app, '/mfa/', user.access)).body.map((m: { name: string }) => m.name), ['app'])
})

t.test('migrate', async (t) => {
  t.test('migrate: false on a database without the tables fails registration clearly', async (t) => {
    const db = memoryKysely()
    t.teardown(() => db.destroy())
    const err = await registrationError({ secret: SECRET, database: db, migrate: false })
    t.ok(err, 'registration fails rather than every request later')
    t.match(err?.message, /"migrate"/)
    t.match(err?.message, /migration/i)
  })

  t.test('migrate: false on a migrated database works', async (t) => {
    const db = memoryKysely()
    t.teardown(() => db.destroy())
    const first = await buildApp({ database: db })
    await newUser(first, 'kept')
    await first.close()
    const app = await buildApp({ database: db, migrate: false })
    t.teardown(() => app.close())
    const login = await post(app, '/login/', { username: 'kept', password: 'correct horse battery' })
    t.equal(login.status, 200)
    t.equal(login.body.mfa_enabled, false)
  })

  t.test('migrations run again on a migrated database change nothing', async (t) => {
    const db = memoryKysely()
    t.teardown(() => db.destroy())
    const first = await buildApp({ database: db })
    await newUser(first, 'again')
    await first.close()
    const app = await buildApp({ database: db, migrate: true })
    t.teardown(() => app.close())
    t.equal((await post(app, '/login/', { username: 'again', password: 'correct horse battery' })).status, 200)
  })

  t.test('the bookkeeping tables are prefixed auth_kit_', async (t) => {
    const db = memoryKysely()
    t.teardown(() => db.destroy())
    const app = await buildApp({ database: db })
    await app.close()
    const tables = (await db.introspection.getTables({ withInternalKyselyTables: true })).map((x) => x.name)
    t.ok(tables.length > 0)
    t.same(tables.filter((name) => !name.startsWith('auth_kit_')), [])
  })
})

t.test('database', async (t) => {
  async function stillWorks (db: Kysely<any>): Promise<boolean> {
    try {
      await db.selectFrom('auth_kit_user').select('id').execute()
      return true
    } catch {
      return false
    }
  }

  t.test('a Kysely instance the host passed in is borrowed: app.close() does not destroy it', async (t) => {
    const db = memoryKysely()
    t.teardown(() => db.destroy())
    const app: FastifyInstance = await buildApp({ database: db })
    t.equal(app.authKit.db, db, 'the host\'s instance is the one in use')
    await newUser(app, 'borrowed')
    await app.close()
    t.ok(await stillWorks(db))
    const rows = await db.selectFrom('auth_kit_user').select('username').execute()
    t.same(rows.map((r) => r.username), ['borrowed'])
  })

  t.test('an instance the plugin made is closed by app.close()', async (t) => {
    const app = await buildApp({ database: 'sqlite::memory:' })
    const db = app.authKit.db as Kysely<any>
    t.ok(await stillWorks(db))
    await app.close()
    t.notOk(await stillWorks(db))
  })

  t.test('an unknown connection string fails registration with a message that names the option', async (t) => {
    const err = await registrationError({ secret: SECRET, database: 'oracle://somewhere' })
    t.match(err?.message, /"database"/)
  })
})

/**
 * The plugin as an application would run it (after examples/server.ts): the
 * plugin on its own database connection, its docs on, AppHandler, and a host
 * route behind `app.authKit.authenticate`. The bench only sets the clock (the
 * documented `now` option) and long token lifetimes, so tokens made during a
 * run outlive it; logging is off, as in the baseline.
 *
 * Env: BENCH_DATABASE (sqlite:PATH or postgres://…), BENCH_T0, BENCH_SPEED, BENCH_SQL_LOG,
 * BENCH_PROFILE_DIR (`--profile`: V8 CPU profiler started and stopped over HTTP).
 * What-if runs only (`--synchronous`): BENCH_SQLITE_PRAGMAS, the pragmas for a
 * connection the bench makes and hands to the plugin as a Kysely instance.
 */
import Fastify from 'fastify'
import SQLite from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import authKitMfa, { AppHandler } from '../src/index.js'
import { LONG_EXPIRY_SECONDS, SECRET, clockFromEnv } from './common.js'
import { installSqlCounter } from './sql-count.js'
import { profilerRoutes } from './profiler.js'

const counter = process.env.BENCH_SQL_LOG === '1' ? installSqlCounter() : null
let database: string | Kysely<any> = process.env.BENCH_DATABASE!
const pragmas = process.env.BENCH_SQLITE_PRAGMAS
if (pragmas !== undefined && database.startsWith('sqlite:')) {
  const sqlite = new SQLite(database.slice('sqlite:'.length))
  for (const [name, value] of Object.entries(JSON.parse(pragmas) as Record<string, string | number>)) sqlite.pragma(`${name} = ${value}`)
  database = new Kysely({ dialect: new SqliteDialect({ database: sqlite }) })
}
const app = Fastify({ logger: false })
await app.register(authKitMfa, {
  secret: SECRET,
  database,
  registration: true,
  now: clockFromEnv(),
  tokens: { accessTokenExpiry: LONG_EXPIRY_SECONDS, refreshTokenExpiry: LONG_EXPIRY_SECONDS },
  mfa: { handlers: [AppHandler], applicationName: 'Bench' },
})
app.get('/api/hello', { preHandler: app.authKit.authenticate, schema: { hide: true } }, async (request) => ({ hello: request.user.username }))
if (counter !== null) counter.route(app)
if (process.env.BENCH_PROFILE_DIR !== undefined) profilerRoutes(app, process.env.BENCH_PROFILE_DIR)

await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.stdout.write(`LISTENING ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => { void app.close().then(() => process.exit(0)) })

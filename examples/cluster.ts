/**
 * Scaling out: N stateless processes on one PostgreSQL database, started with
 * node:cluster on one port. Every process keeps nothing of its own; login
 * attempts, codes, counters and tokens live in the database, so any process
 * can answer any request.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
 *   AUTH_KIT_SECRET=$(openssl rand -base64 32) WORKERS=4 npx tsx examples/cluster.ts
 *
 * With REDIS_URL set (redis://127.0.0.1:6379), every process also shares one
 * per-IP request limit through @fastify/rate-limit's Redis store.
 * In an application outside this repository, import from 'fastify-auth-kit'.
 */
import cluster from 'node:cluster'
import { availableParallelism } from 'node:os'
import Fastify from 'fastify'
import authKitMfa, { AppHandler } from '../src/index.js'

const workers = Number(process.env.WORKERS ?? availableParallelism())
const port = Number(process.env.PORT ?? 3000)

if (cluster.isPrimary) {
  // Run the migrations once here, before any worker takes traffic, rather than
  // in N processes at once (that is safe too: the migrator takes a lock).
  const setup = Fastify({ logger: false })
  await setup.register(authKitMfa, { secret: secret(), database: database() })
  await setup.close()

  for (let i = 0; i < workers; i++) cluster.fork()
  cluster.on('exit', (worker, code, signal) => {
    // A crashed process leaves nothing half-made in the database: start another.
    if (signal !== 'SIGTERM' && code !== 0) {
      console.error(`worker ${worker.process.pid} died (${signal ?? code}); starting another`)
      cluster.fork()
    }
  })
  console.log(`${workers} processes on http://127.0.0.1:${port} (primary ${process.pid})`)
} else {
  const app = Fastify({ logger: { level: 'warn' }, trustProxy: process.env.TRUST_PROXY === '1' })

  if (process.env.REDIS_URL !== undefined) {
    // Per client address, counted in Redis, so N processes share one limit.
    const [{ default: rateLimit }, { Redis }] = await Promise.all([import('@fastify/rate-limit'), import('ioredis')])
    const redis = new Redis(process.env.REDIS_URL, { connectTimeout: 500, maxRetriesPerRequest: 1 })
    await app.register(rateLimit, { global: true, max: 100, timeWindow: '1 minute', redis, nameSpace: 'auth-kit-rl-' })
    app.addHook('onClose', async () => { redis.disconnect() })
  }

  await app.register(authKitMfa, {
    secret: secret(),
    database: database(),
    migrate: false, // the primary ran them
    registration: true,
    mfa: { handlers: [AppHandler], applicationName: 'Cluster Example' },
  })
  app.get('/api/whoami', { preHandler: app.authKit.authenticate }, async (request) => ({ user: request.user.id, pid: process.pid }))
  await app.listen({ port, host: '127.0.0.1' })

  process.once('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}

function secret (): string {
  const value = process.env.AUTH_KIT_SECRET
  if (value === undefined || value.length < 32) throw new Error('set AUTH_KIT_SECRET (at least 32 characters), the same in every process')
  return value
}

function database (): string {
  const value = process.env.DATABASE_URL
  if (value === undefined || !/^postgres(ql)?:\/\//.test(value)) throw new Error('set DATABASE_URL to a postgres:// URL')
  return value
}

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { startServer, tally, type ServerProcess } from '../helpers/server-process.js'
import { startSmtp } from '../helpers/smtp.js'
import { dialects } from '../helpers/dialects.js'

// Real processes on a shared 2-core machine: minutes under load, not the runner's default 120 s.
t.setTimeout(10 * 60 * 1000)

// README "Scaling out": per-IP request limits with @fastify/rate-limit on its
// Redis store. Two server processes on one database and one Redis share one
// limit: a client spreading its requests over both gets `max` in all, not
// `max` per process.

const REDIS = process.env.AUTH_KIT_TEST_REDIS ?? 'redis://127.0.0.1:6379'
const probe = new Redis(REDIS, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null })
const reachable = await probe.connect().then(() => true, () => false)

if (!reachable) {
  probe.disconnect()
  t.test('two processes share one per-IP limit through Redis', { skip: `Redis is not reachable at ${REDIS}; set AUTH_KIT_TEST_REDIS to run this test` }, async () => {})
} else {
  t.test('two processes share one per-IP limit through Redis', async (t) => {
    const sqlite = dialects.find((d) => d.name === 'sqlite')!
    const scratch = await sqlite.create()
    if ('unavailable' in scratch) throw new Error(scratch.unavailable)
    const mailbox = await startSmtp()
    const nameSpace = `auth-kit-test-${randomBytes(6).toString('hex')}-`
    const servers: ServerProcess[] = []
    t.teardown(async () => {
      await Promise.all(servers.map(async (s) => s.kill('SIGKILL')))
      const keys = await probe.keys(`${nameSpace}*`)
      if (keys.length > 0) await probe.del(...keys)
      probe.disconnect()
      await mailbox.close()
      await scratch.drop()
    })
    const max = 6
    const settings = { database: scratch.url, smtpPort: mailbox.port, rateLimit: { redis: REDIS, max, timeWindow: 60_000, nameSpace } }
    servers.push(await startServer(settings))
    servers.push(await startServer(settings))

    const answers = []
    // A login without a password: a 400 from the plugin that counts toward none of its own limits
    // (rule 9), so only the rate limit can refuse it.
    for (let i = 0; i < 10; i++) answers.push(await servers[i % 2].post('/login/', { username: 'somebody' }))
    t.comment(`one limit of ${max} per minute for 127.0.0.1, 10 requests alternating over 2 processes → ${tally(answers)}`)
    t.same(answers.slice(0, max).map((a) => a.body?.code), Array(max).fill('FST_ERR_VALIDATION'), `the first ${max}, over both processes, reach the plugin`)
    t.same(answers.slice(max).map((a) => a.status), Array(10 - max).fill(429), 'the rest are refused by whichever process gets them')
    t.equal(answers[max].headers?.get('x-ratelimit-limit'), String(max))
    t.ok(Number(answers[max].headers?.get('retry-after')) > 0, 'with Retry-After')
    t.ok((await probe.keys(`${nameSpace}*`)).length >= 1, 'the count lives in Redis')
  })
}

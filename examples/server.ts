/**
 * The demo: `npm start`, then open the page or the Swagger UI it prints and
 * try every step of a two-step login by hand (register, log in, set up a
 * method, log in with a code). Mailed codes land in the development outbox
 * page and texted codes in the SMS outbox page, not in any inbox or phone and
 * not in the log. This file only runs it: the application is built by
 * ./app.ts, which the page's browser test builds too.
 *
 * Data lives in examples/data/ (gitignored) and survives a restart, so an
 * authenticator app set up once keeps working.
 */
import { LogController } from 'fastify'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { buildDemo } from './app.js'

// DEMO_DATA_DIR moves the data (test/demo-log.test.ts runs the demo on a scratch directory).
const dataDir = process.env.DEMO_DATA_DIR !== undefined ? `${process.env.DEMO_DATA_DIR.replace(/\/$/, '')}/` : fileURLToPath(new URL('./data/', import.meta.url))
mkdirSync(dataDir, { recursive: true })

/**
 * The demo's secret, made once and kept beside its database, so tokens, TOTP
 * secrets (encrypted with a key derived from it) and data survive a restart.
 * Production must use its own secret from the environment or a secret store,
 * never a file made like this one.
 */
function demoSecret (): string {
  if (process.env.AUTH_KIT_SECRET !== undefined) return process.env.AUTH_KIT_SECRET
  const file = `${dataDir}secret.txt`
  if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 })
  return readFileSync(file, 'utf8').trim()
}

/**
 * One readable line per log record, instead of pino's JSON (no extra
 * dependency). A stack is printed only for a server error: a 4xx is the
 * client's mistake, and its line says which.
 */
function readableLog (): Writable {
  const levels: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' }
  return new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue
        try {
          const { level, time, msg, reqId, err } = JSON.parse(line)
          const clock = new Date(time).toTimeString().slice(0, 8)
          const serverError = err !== undefined && (err.statusCode === undefined || err.statusCode >= 500)
          const error = serverError ? `\n  ${err.stack ?? err.message}` : ''
          process.stdout.write(`${clock} ${levels[level] ?? level} ${reqId !== undefined ? `[${reqId}] ` : ''}${msg}${error}\n`)
        } catch {
          process.stdout.write(`${line}\n`)
        }
      }
      done()
    },
  })
}

const port = Number(process.env.PORT ?? 3000)

// Fastify's own request logging writes two records per request, and a 4xx with
// its stack: the demo writes one line per request instead, when it is answered.
const { app, adminToken } = await buildDemo({
  secret: demoSecret(),
  database: `sqlite:${dataDir}demo.db`,
  origins: [`http://localhost:${port}`],
  fastify: { logger: { level: process.env.LOG_LEVEL ?? 'info', stream: readableLog() }, logController: new LogController({ disableRequestLogging: true }) },
})
// The error code of a 4xx, read from the answer, so the line says what went wrong.
const errorCodes = new WeakMap<object, string>()
app.addHook('onSend', async (request, reply, payload) => {
  if (reply.statusCode >= 400 && typeof payload === 'string' && payload.startsWith('{')) {
    try {
      const { code } = JSON.parse(payload) as { code?: unknown }
      if (typeof code === 'string') errorCodes.set(request, code)
    } catch { /* not JSON: no code to show */ }
  }
  return payload
})
app.addHook('onResponse', async (request, reply) => {
  const status = reply.statusCode
  const code = errorCodes.get(request)
  const line = `${request.method} ${request.url} → ${status}${code === undefined ? '' : ` ${code}`} in ${reply.elapsedTime.toFixed(1)} ms`
  if (status >= 500) request.log.error(line)
  else request.log.info(line)
})

// Passkeys (WebAuthn) work only on the origin the demo was built for, and browsers
// accept http:// for localhost alone: the demo is printed as localhost. It listens
// on 127.0.0.1, which browsers and curl reach for localhost too.
const base = `http://localhost:${port}`
await app.listen({ port, host: '127.0.0.1' })
app.log.info(`The page:          ${base}/`)
app.log.info(`Swagger UI:        ${base}/api/docs`)
app.log.info(`Mail outbox (dev): ${base}/dev/outbox`)
app.log.info(`SMS outbox (dev):  ${base}/dev/sms`)
app.log.info(`Admin routes:      ${base}/admin/users/:id/{methods,resetMfa,unlock,revokeSessions} with header x-admin-token: ${adminToken}`)

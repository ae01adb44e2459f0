/**
 * `npm run bench`: what a login costs, next to what Fastify itself costs, in
 * one run on one machine. Each figure is the median of many requests through
 * `app.inject` (no network), shown as a ratio to the baseline measured in the
 * same run, so the ratios travel between machines better than the milliseconds.
 *
 *   baseline       GET of a trivial route on a bare Fastify app
 *   password login POST /login/ for a user without MFA: one scrypt check, tokens issued
 *   verify (TOTP)  POST /login/verify/ with an authenticator code
 *   verify (backup) POST /login/verify/ with a backup code: at most one slow hash
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { generate } from 'otplib'
import authKitMfa, { AppHandler } from '../src/index.js'

const SECRET = 'bench-secret-that-is-at-least-32-characters-long'
const PASSWORD = 'correct horse battery'

let clock = Date.UTC(2026, 0, 1, 12, 0, 0)
const now = () => clock
/** The next TOTP step: each step is accepted once per method. */
const nextStep = () => { clock += 30_000 }

async function json (app: FastifyInstance, method: 'GET' | 'POST', url: string, payload?: unknown, access?: string) {
  const res = await app.inject({ method, url, payload: payload as object, headers: access === undefined ? {} : { authorization: `Bearer ${access}` } })
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`)
  return res.body === '' ? undefined : res.json()
}

/** Median and 90th percentile in ms of `run`, after `warmup` untimed rounds; `prepare` is never timed. */
async function measure (rounds: number, run: (prepared: any) => Promise<unknown>, prepare: () => Promise<unknown> = async () => undefined, warmup = 3) {
  const times: number[] = []
  for (let i = 0; i < warmup + rounds; i++) {
    const prepared = await prepare()
    const start = process.hrtime.bigint()
    await run(prepared)
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (i >= warmup) times.push(ms)
  }
  times.sort((a, b) => a - b)
  return { median: times[Math.floor(times.length / 2)], p90: times[Math.floor(times.length * 0.9)], rounds }
}

// Baseline: Fastify alone.
const bare = Fastify({ logger: false })
bare.get('/ping', async () => ({ ok: true }))
await bare.ready()

const app = Fastify({ logger: false })
await app.register(authKitMfa, {
  secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, now,
  // The clock moves 30 s per TOTP round: one access token lasts the whole run.
  tokens: { accessTokenExpiry: 86400 },
  mfa: { handlers: [AppHandler], backupCodes: { count: 20 } },
})
await app.ready()

await json(app, 'POST', '/api/auth/registration/', { username: 'plain', email: 'plain@example.com', password: PASSWORD })
await json(app, 'POST', '/api/auth/registration/', { username: 'mfa', email: 'mfa@example.com', password: PASSWORD })
const { access } = await json(app, 'POST', '/api/auth/login/', { username: 'mfa', password: PASSWORD })
const created = await json(app, 'POST', '/api/auth/mfa/', { method: 'app' }, access)
const totpSecret = new URL(created.setup_data.qr_link).searchParams.get('secret')!
const totp = async () => generate({ secret: totpSecret, epoch: Math.floor(clock / 1000) })
await json(app, 'POST', '/api/auth/mfa/confirm/', { method: 'app', code: await totp() }, access)

let backupCodes: string[] = created.backup_codes
/** A fresh login attempt, and a backup code not used yet (new ones once all are spent). */
async function attemptWithBackupCode () {
  if (backupCodes.length === 0) {
    nextStep()
    backupCodes = (await json(app, 'POST', '/api/auth/mfa/backup-codes/', { method: 'app', code: await totp() }, access)).backup_codes
  }
  const { ephemeral_token } = await json(app, 'POST', '/api/auth/login/', { username: 'mfa', password: PASSWORD })
  return { ephemeral_token, code: backupCodes.pop() }
}
async function attemptWithTotp () {
  nextStep()
  const { ephemeral_token } = await json(app, 'POST', '/api/auth/login/', { username: 'mfa', password: PASSWORD })
  return { ephemeral_token, code: await totp() }
}

const rows: Array<[string, Awaited<ReturnType<typeof measure>>]> = []
rows.push(['baseline: bare Fastify GET', await measure(2000, async () => bare.inject({ method: 'GET', url: '/ping' }), undefined, 200)])
rows.push(['password login (no MFA)', await measure(40, async () => json(app, 'POST', '/api/auth/login/', { username: 'plain', password: PASSWORD }))])
rows.push(['verify with a TOTP code', await measure(40, async (p) => json(app, 'POST', '/api/auth/login/verify/', p), attemptWithTotp)])
rows.push(['verify with a backup code', await measure(40, async (p) => json(app, 'POST', '/api/auth/login/verify/', p), attemptWithBackupCode)])

const base = rows[0][1].median
const pad = (s: string, n: number) => s.padEnd(n)
const num = (n: number, width: number) => n.toFixed(n < 1 ? 3 : 1).padStart(width)
console.log(`fastify-auth-kit bench · Node ${process.version} · ${new Date().toISOString().slice(0, 10)}`)
console.log(`${pad('what', 28)} ${'rounds'.padStart(6)} ${'median ms'.padStart(10)} ${'p90 ms'.padStart(9)} ${'× baseline'.padStart(11)}`)
for (const [name, r] of rows) {
  console.log(`${pad(name, 28)} ${String(r.rounds).padStart(6)} ${num(r.median, 10)} ${num(r.p90, 9)} ${(r.median / base).toFixed(0).padStart(11)}`)
}
await app.close()
await bare.close()

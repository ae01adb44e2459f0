/**
 * The hand-written baseline: a bare Fastify server that answers the measured
 * routes on the same paths with the same bodies, doing the least work each
 * route needs while keeping the same rules (see baseline-store.ts):
 *
 *   login step 1     1 read (user, its methods, throttle counts) + scrypt at the
 *                    plugin's PASSWORD_COST (from the stored hash) + 1 insert
 *   verify (TOTP)    1 read (attempt, user, method) + TOTP ±1 step + one
 *                    transaction: attempt used, replay guard (compare-and-set of
 *                    the last step), session, refresh token
 *   verify (backup)  the same read + 1 read of the candidate code + one scrypt at
 *                    BACKUP_CODE_COST + one transaction: code consumed, attempt
 *                    used, session, refresh token
 *   refresh          one transaction: spend the token (only if its session and
 *                    user are live) + insert the next one
 *   GET /mfa/        JWT + 1 read (session, user) + 1 read (methods, code counts)
 *   host route       JWT + 1 read (session, user)
 *
 * Access tokens are HS256 JWTs signed and checked with fast-jwt, as the plugin
 * does. The SQLite connection takes the pragmas the plugin's own connection
 * has (the harness reads them from src/db/connect.ts and passes them here).
 *
 * Env: BENCH_DB (file), BENCH_T0, BENCH_SPEED, BENCH_PRAGMAS (JSON), BENCH_SQL_LOG, BENCH_PROFILE_DIR (as the plugin's).
 */
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { createHash, randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto'
import { createSigner, createVerifier } from 'fast-jwt'
import SQLite from 'better-sqlite3'
import { BASELINE_SCHEMA, baselineKeys, openBaselineSecret } from './baseline-store.js'
import { LONG_EXPIRY_SECONDS, SECRET, clockFromEnv, stepAt, totpForStep } from './common.js'
import { installSqlCounter } from './sql-count.js'
import { profilerRoutes } from './profiler.js'

const now = clockFromEnv()
const keys = baselineKeys(SECRET)
const MAX_ATTEMPT_FAILURES = 5
const LOCK_THRESHOLD = 10
const LOCK_MS = 900_000
const MAX_FAILURES_PER_CLIENT = 5
const MAX_FAILURES_PER_ADDRESS = 100
const FAILURE_WINDOW_MS = 900_000

const counter = process.env.BENCH_SQL_LOG === '1' ? installSqlCounter() : null
const db = new SQLite(process.env.BENCH_DB!)
for (const [name, value] of Object.entries(JSON.parse(process.env.BENCH_PRAGMAS ?? '{}') as Record<string, string | number>)) {
  db.pragma(`${name} = ${value}`)
}
db.exec(BASELINE_SCHEMA)

const q = {
  login: db.prepare(`SELECT u.id, u.username, u.email, u.password_hash,
      (SELECT count FROM bench_login_failure WHERE key = @addressKey AND since > @windowStart) AS address_failures,
      (SELECT count FROM bench_login_failure WHERE key = 'u:' || u.id || ':' || @address AND since > @windowStart) AS pair_failures,
      (SELECT group_concat(name) FROM bench_method WHERE user_id = u.id AND is_active = 1) AS methods,
      (SELECT name FROM bench_method WHERE user_id = u.id AND is_active = 1 AND is_primary = 1) AS primary_method
    FROM bench_user u WHERE u.username_key = @key OR u.email_key = @key`),
  insertAttempt: db.prepare('INSERT INTO bench_attempt (token_hash, user_id, method, expires_at, created_at) VALUES (?, ?, ?, ?, ?)'),
  attempt: db.prepare(`SELECT a.user_id, a.method, u.username, u.email, u.locked_until, u.mfa_failures, m.id AS method_id, m.secret, m.last_step
    FROM bench_attempt a JOIN bench_user u ON u.id = a.user_id
    JOIN bench_method m ON m.user_id = a.user_id AND m.name = a.method AND m.is_active = 1
    WHERE a.token_hash = ? AND a.used_at IS NULL AND a.expires_at > ? AND a.failures < ?`),
  backupCandidate: db.prepare(`SELECT b.id, b.code_hash FROM bench_backup_code b JOIN bench_method m ON m.id = b.method_id AND m.is_active = 1
    WHERE b.user_id = ? AND b.lookup = ?`),
  useAttempt: db.prepare('UPDATE bench_attempt SET used_at = ? WHERE token_hash = ? AND used_at IS NULL'),
  failAttempt: db.prepare('UPDATE bench_attempt SET failures = failures + 1 WHERE token_hash = ?'),
  failUser: db.prepare(`UPDATE bench_user SET mfa_failures = mfa_failures + 1,
    locked_until = CASE WHEN mfa_failures + 1 >= ${LOCK_THRESHOLD} THEN ? ELSE locked_until END WHERE id = ?`),
  resetUser: db.prepare('UPDATE bench_user SET mfa_failures = 0 WHERE id = ?'),
  guardStep: db.prepare('UPDATE bench_method SET last_step = ? WHERE id = ? AND (last_step IS NULL OR last_step < ?)'),
  consumeCode: db.prepare('DELETE FROM bench_backup_code WHERE id = ?'),
  insertSession: db.prepare('INSERT INTO bench_session (id, user_id, amr, created_at) VALUES (?, ?, ?, ?)'),
  insertRefresh: db.prepare('INSERT INTO bench_refresh (token_hash, session_id, user_id, amr, expires_at) VALUES (?, ?, ?, ?, ?)'),
  spendRefresh: db.prepare(`UPDATE bench_refresh SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
    AND EXISTS (SELECT 1 FROM bench_session s JOIN bench_user u ON u.id = s.user_id WHERE s.id = bench_refresh.session_id AND s.revoked_at IS NULL)
    RETURNING session_id, user_id, amr`),
  spentRefresh: db.prepare('SELECT session_id FROM bench_refresh WHERE token_hash = ? AND used_at IS NOT NULL'),
  revokeSession: db.prepare('UPDATE bench_session SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
  sessionUser: db.prepare(`SELECT u.id, u.username, u.email FROM bench_session s JOIN bench_user u ON u.id = s.user_id
    WHERE s.id = ? AND s.revoked_at IS NULL`),
  methods: db.prepare(`SELECT m.name, m.is_active, m.is_primary, (SELECT count(*) FROM bench_backup_code b WHERE b.method_id = m.id) AS codes
    FROM bench_method m WHERE m.user_id = ?`),
  countFailure: db.prepare(`INSERT INTO bench_login_failure (key, count, since) VALUES (?, 1, ?)
    ON CONFLICT (key) DO UPDATE SET count = CASE WHEN since > ? THEN count + 1 ELSE 1 END, since = CASE WHEN since > ? THEN since ELSE excluded.since END`),
  clearFailure: db.prepare('DELETE FROM bench_login_failure WHERE key = ?'),
}

const sign = createSigner({ key: keys.jwt, algorithm: 'HS256', kid: keys.kid })
const verifyJwt = createVerifier({ key: keys.jwt, algorithms: ['HS256'], ignoreExpiration: true, ignoreNotBefore: true })
const sha = (value: string): string => createHash('sha256').update(value).digest('base64url')
const iso = (ms: number): string => new Date(ms).toISOString()

function fail (reply: FastifyReply, status: number, code: string): FastifyReply {
  return reply.code(status).send({ statusCode: status, code, error: 'Error', message: code })
}

function scryptCheck (value: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$')
  if (kind !== 'scrypt') return Promise.resolve(false)
  return new Promise((resolve, reject) => {
    scrypt(value, Buffer.from(salt, 'base64url'), 32, { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * Number(n) * Number(r) }, (err, key) => {
      if (err !== null) reject(err)
      else resolve(timingSafeEqual(key, Buffer.from(hash, 'base64url')))
    })
  })
}
let dummyHash: string | undefined

/** A finished login: session, refresh token, access token. Runs inside the caller's transaction. */
function issue (userId: string, amr: string, t: number, sessionId: string = randomUUID()): { access: string, refresh: string, access_expiration: string, refresh_expiration: string } {
  const refresh = randomBytes(32).toString('base64url')
  const refreshExpires = t + LONG_EXPIRY_SECONDS * 1000
  q.insertRefresh.run(sha(refresh), sessionId, userId, amr, refreshExpires)
  const iat = Math.floor(t / 1000)
  const exp = iat + LONG_EXPIRY_SECONDS
  const access = sign({ sub: userId, sid: sessionId, amr: amr.split(' '), auth_time: iat, token_use: 'access', jti: randomUUID(), iat, exp })
  return { access, refresh, access_expiration: iso(exp * 1000), refresh_expiration: iso(refreshExpires) }
}

const finishLogin = db.transaction((tokenHash: string, userId: string, t: number, extra: () => boolean) => {
  if (q.useAttempt.run(t, tokenHash).changes !== 1) return null
  if (!extra()) throw new Error('rollback')
  const sessionId = randomUUID()
  q.insertSession.run(sessionId, userId, 'pwd mfa', t)
  return issue(userId, 'pwd mfa', t, sessionId)
})
function finishOrNull (tokenHash: string, userId: string, t: number, extra: () => boolean): ReturnType<typeof issue> | null {
  try {
    return finishLogin.immediate(tokenHash, userId, t, extra)
  } catch (err) {
    if ((err as Error).message === 'rollback') return null
    throw err
  }
}

function recordWrongCode (tokenHash: string, userId: string, t: number): void {
  db.transaction(() => {
    q.failAttempt.run(tokenHash)
    q.failUser.run(t + LOCK_MS, userId)
  }).immediate()
}

interface Claims { sub: string, sid: string, exp: number, token_use: string }
interface AuthedRequest extends FastifyRequest { benchUser?: { id: string, username: string, email: string } }

async function authenticate (request: AuthedRequest, reply: FastifyReply): Promise<void> {
  const header = request.headers.authorization
  let claims: Claims | null = null
  if (typeof header === 'string' && header.startsWith('Bearer ')) {
    try { claims = verifyJwt(header.slice(7)) as Claims } catch { claims = null }
  }
  if (claims === null || claims.token_use !== 'access' || claims.exp * 1000 <= now()) return void fail(reply, 401, 'AUTH_KIT_UNAUTHORIZED')
  const user = q.sessionUser.get(claims.sid) as { id: string, username: string, email: string } | undefined
  if (user === undefined || user.id !== claims.sub) return void fail(reply, 401, 'AUTH_KIT_UNAUTHORIZED')
  request.benchUser = user
}

const app = Fastify({ logger: false })
const str = { type: 'string' } as const
const bodyOf = (required: string[], optional: string[] = []) => ({
  body: { type: 'object', required, additionalProperties: false, properties: Object.fromEntries([...required, ...optional].map((k) => [k, str])) },
})

app.post('/api/auth/login/', { schema: bodyOf(['username', 'password']) }, async (request, reply) => {
  const { username, password } = request.body as { username: string, password: string }
  const t = now()
  const address = request.ip
  const row = q.login.get({ key: username.normalize('NFKC').trim().toLowerCase(), addressKey: `a:${address}`, address, windowStart: t - FAILURE_WINDOW_MS }) as
    { id: string, username: string, email: string, password_hash: string, address_failures: number | null, pair_failures: number | null, methods: string | null, primary_method: string | null } | undefined
  if ((row?.address_failures ?? 0) >= MAX_FAILURES_PER_ADDRESS || (row?.pair_failures ?? 0) >= MAX_FAILURES_PER_CLIENT) return fail(reply, 429, 'AUTH_KIT_LOGIN_THROTTLED')
  dummyHash ??= row?.password_hash
  const right = await scryptCheck(password, row?.password_hash ?? dummyHash ?? 'scrypt$16384$8$1$AAAA$AAAA')
  if (row === undefined || !right) {
    q.countFailure.run(`a:${address}`, t, t - FAILURE_WINDOW_MS, t - FAILURE_WINDOW_MS)
    if (row !== undefined) q.countFailure.run(`u:${row.id}:${address}`, t, t - FAILURE_WINDOW_MS, t - FAILURE_WINDOW_MS)
    return fail(reply, 401, 'AUTH_KIT_INVALID_CREDENTIALS')
  }
  if ((row.pair_failures ?? 0) > 0) q.clearFailure.run(`u:${row.id}:${address}`)
  if (row.methods === null) {
    const tokens = db.transaction(() => {
      const sessionId = randomUUID()
      q.insertSession.run(sessionId, row.id, 'pwd', t)
      return issue(row.id, 'pwd', t, sessionId)
    }).immediate()
    return { mfa_enabled: false, ...tokens, user: { id: row.id, username: row.username, email: row.email } }
  }
  const method = row.primary_method ?? row.methods.split(',')[0]
  const token = randomBytes(32).toString('base64url')
  q.insertAttempt.run(sha(token), row.id, method, t + 600_000, t)
  return { mfa_enabled: true, ephemeral_token: token, method, methods: row.methods.split(',').sort() }
})

app.post('/api/auth/login/verify/', { schema: bodyOf(['ephemeral_token', 'code'], ['remember_device']) }, async (request, reply) => {
  const body = request.body as { ephemeral_token: string, code: string }
  const t = now()
  const tokenHash = sha(body.ephemeral_token)
  const row = q.attempt.get(tokenHash, t, MAX_ATTEMPT_FAILURES) as
    { user_id: string, method: string, username: string, email: string, locked_until: number, mfa_failures: number, method_id: string, secret: string, last_step: number | null } | undefined
  if (row === undefined) return fail(reply, 401, 'AUTH_KIT_INVALID_EPHEMERAL_TOKEN')
  if (row.locked_until > t) return fail(reply, 429, 'AUTH_KIT_TOO_MANY_ATTEMPTS')
  const code = body.code.replace(/[\s-]/g, '')
  let tokens: ReturnType<typeof issue> | null = null
  const resetLock = (): boolean => { if (row.mfa_failures > 0) q.resetUser.run(row.user_id); return true }
  if (/^[0-9]{6}$/.test(code)) {
    const key = openBaselineSecret(keys, row.secret, row.user_id)
    const current = stepAt(t)
    let matched = -1
    for (let s = current - 1; s <= current + 1; s++) {
      if (timingSafeEqual(Buffer.from(totpForStep(key, s)), Buffer.from(code)) && matched < 0) matched = s
    }
    if (matched >= 0 && (row.last_step === null || matched > row.last_step)) {
      tokens = finishOrNull(tokenHash, row.user_id, t, () => q.guardStep.run(matched, row.method_id, matched).changes === 1 && resetLock())
    }
  } else {
    const normalized = code.toUpperCase().replace(/[IL]/g, '1').replace(/O/g, '0')
    const candidate = q.backupCandidate.get(row.user_id, sha(`${row.user_id}:${normalized}`).slice(0, 12)) as { id: string, code_hash: string } | undefined
    if (candidate !== undefined && await scryptCheck(normalized, candidate.code_hash)) {
      tokens = finishOrNull(tokenHash, row.user_id, now(), () => q.consumeCode.run(candidate.id).changes === 1 && resetLock())
    }
  }
  if (tokens === null) {
    recordWrongCode(tokenHash, row.user_id, t)
    return fail(reply, 401, 'AUTH_KIT_INVALID_CODE')
  }
  return { ...tokens, user: { id: row.user_id, username: row.username, email: row.email } }
})

const spend = db.transaction((tokenHash: string, t: number) => {
  const row = q.spendRefresh.get(t, tokenHash, t) as { session_id: string, user_id: string, amr: string } | undefined
  if (row === undefined) {
    // A spent token presented again: its session (chain) ends.
    const spent = q.spentRefresh.get(tokenHash) as { session_id: string } | undefined
    if (spent !== undefined) q.revokeSession.run(t, spent.session_id)
    return null
  }
  return issue(row.user_id, row.amr, t, row.session_id)
})

app.post('/api/auth/token/refresh/', { schema: bodyOf(['refresh']) }, async (request, reply) => {
  const tokens = spend.immediate(sha((request.body as { refresh: string }).refresh), now())
  if (tokens === null) return fail(reply, 401, 'AUTH_KIT_INVALID_REFRESH_TOKEN')
  return tokens
})

app.get('/api/auth/mfa/', { preHandler: authenticate }, async (request: AuthedRequest) => {
  const rows = q.methods.all(request.benchUser!.id) as Array<{ name: string, is_active: number, is_primary: number, codes: number }>
  const app = rows.find((r) => r.name === 'app')
  return [{
    name: 'app', display_name: 'Authenticator App', is_active: app?.is_active === 1, is_primary: app?.is_primary === 1,
    is_setup: app !== undefined, requires_dispatch: false, backup_codes_remaining: app?.codes ?? 0,
  }]
})

app.get('/api/hello', { preHandler: authenticate }, async (request: AuthedRequest) => ({ hello: request.benchUser!.username }))

if (counter !== null) counter.route(app)
if (process.env.BENCH_PROFILE_DIR !== undefined) profilerRoutes(app, process.env.BENCH_PROFILE_DIR)

await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.stdout.write(`LISTENING ${typeof address === 'object' && address !== null ? address.port : 0}\n`)
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => { void app.close().then(() => { db.close(); process.exit(0) }) })

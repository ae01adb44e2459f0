/**
 * `npm run bench`: the plugin against a hand-written Fastify baseline, over
 * HTTP with autocannon, against listening servers, in one invocation with
 * interleaved blocks. See bench/README.md for what each target measures.
 *
 *   npm run bench                  full run (about 15 minutes on 2 cores)
 *   npm run bench -- --quick       same lines, fewer and shorter blocks (< 5 minutes)
 *   npm run bench -- --pg / --no-pg   force the PostgreSQL rows on or off
 *   npm run bench -- --sql         SQL statements per request (debug run, no timing)
 *   npm run bench -- --profile     CPU profile of the plugin's verify under load
 *
 * Seeded databases are cached in bench/.data/cache (keyed by the seed plan and
 * the source of the seeder, the migrations and src/crypto.ts) and copied for
 * each run, so only the first run pays for seeding.
 */
import autocannon from 'autocannon'
import { build } from 'esbuild'
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sql } from 'kysely'
import { openDatabase } from '../src/db/connect.js'
import { BACKUP_CODES, PASSWORD, TOTP_SECRET_BYTES, benchClock, seededToken, stepAt, totpForStep, username } from './common.js'
import { formatProfile, summarizeProfile } from './profile.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DATA = join(ROOT, 'bench/.data')
const CACHE = join(DATA, 'cache')
const BUILD = join(ROOT, 'bench/.build')
const argv = new Set(process.argv.slice(2))
const QUICK = argv.has('--quick')
const MODE = argv.has('--sql') ? 'sql' : argv.has('--profile') ? 'profile' : 'bench'
/** `--profile [TARGET]`: which request target to profile (default verify). */
const profileArg = process.argv[process.argv.indexOf('--profile') + 1]
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/auth_kit_bench'

type Target = 'verify' | 'mfa_list' | 'host_route' | 'login' | 'backup_verify' | 'refresh'
const TARGETS: Target[] = ['verify', 'mfa_list', 'host_route', 'login', 'backup_verify', 'refresh']

const CONFIG = QUICK
  ? { users: 300_000, smallUsers: 1_000, codesPerUser: 2, rounds: 3, warmup: 1, pgUsers: 50_000, smallAttempts: 240,
      seconds: { verify: 3, mfa_list: 3, host_route: 3, login: 6, backup_verify: 4, refresh: 3 } as Record<Target, number>, scaleSeconds: 3 }
  : { users: 300_000, smallUsers: 1_000, codesPerUser: 2, rounds: 5, warmup: 2, pgUsers: 50_000, smallAttempts: 240,
      seconds: { verify: 8, mfa_list: 6, host_route: 6, login: 15, backup_verify: 10, refresh: 6 } as Record<Target, number>, scaleSeconds: 8 }
// Development only: a smaller table (BENCH_USERS) for trying the harness out.
if (process.env.BENCH_USERS !== undefined) CONFIG.users = CONFIG.pgUsers = Number(process.env.BENCH_USERS)
const CONNECTIONS = 10
/**
 * The bench clock. On the big tables every user verifies at most once, so it
 * runs at wall-clock speed. The 1,000-user table needs fresh TOTP steps to
 * verify the same users again and again, so its clock runs SMALL_SPEED times
 * faster (default 90: a step lasts 1/3 s, 1,000 users give 3,000 fresh (user,
 * step) pairs a second and a code stays good for 0.7 to 1 s after it is sent).
 */
const speedArg = process.argv.indexOf('--speed')
const SMALL_SPEED = speedArg > 0 ? Number(process.argv[speedArg + 1]) : 90
const T0 = Date.now()
/**
 * What-if (`--synchronous normal`): both servers' SQLite connections with this
 * synchronous setting instead of the plugin's own; the plugin then gets a
 * Kysely instance the bench makes with the plugin's other pragmas.
 */
const syncArg = process.argv.indexOf('--synchronous')
const SYNC_OVERRIDE = syncArg > 0 ? process.argv[syncArg + 1].toUpperCase() : undefined
const TARGET_RATIOS: Record<string, number> = { verify: 0.8, mfa_list: 0.8, host_route: 0.8, login: 0.9, backup_verify: 0.8, refresh: 0.8, rss: 0.83, users_scale: 0.9 }

function log (line: string): void { process.stderr.write(`${line}\n`) }

// --- pinning -----------------------------------------------------------------

const hasTaskset = spawnSync('taskset', ['--version']).status === 0 && cpus().length >= 2
/** Servers on core 0, this process (the loader) on core 1. */
function pinSelf (): void {
  if (hasTaskset) execFileSync('taskset', ['-a', '-cp', '1', String(process.pid)], { stdio: 'ignore' })
}

// --- build ---------------------------------------------------------------------

/** The servers run as plain JavaScript (no tsx loader in their RSS or profile). */
async function buildServers (): Promise<void> {
  const files: string[] = []
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(ROOT, dir))) {
      const path = join(dir, name)
      if (statSync(join(ROOT, path)).isDirectory()) walk(path)
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(join(ROOT, path))
    }
  }
  for (const dir of ['src', 'schemas', 'migrations']) walk(dir)
  for (const name of ['common.ts', 'seed.ts', 'baseline-store.ts', 'baseline-server.ts', 'plugin-server.ts', 'sql-count.ts', 'profiler.ts']) files.push(join(ROOT, 'bench', name))
  rmSync(BUILD, { recursive: true, force: true })
  await build({ entryPoints: files, outbase: ROOT, outdir: BUILD, format: 'esm', platform: 'node', target: 'node20', bundle: false, logLevel: 'warning' })
}

// --- seeding -------------------------------------------------------------------

interface Plan { users: number, attemptsPerUser: number, codesPerUser: number }

function sourceKey (plan: Plan, kind: string): string {
  const hash = createHash('sha256').update(JSON.stringify({ plan, kind }))
  for (const file of ['bench/seed.ts', 'bench/common.ts', 'bench/baseline-store.ts', 'src/crypto.ts', ...readdirSync(join(ROOT, 'migrations')).map((f) => `migrations/${f}`)]) {
    hash.update(readFileSync(join(ROOT, file)))
  }
  return hash.digest('hex').slice(0, 16)
}

function seedProcess (kind: string, target: string, plan: Plan): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(BUILD, 'bench/seed.js'), kind, target, String(plan.users), String(plan.attemptsPerUser), String(plan.codesPerUser)], { stdio: ['ignore', 'inherit', 'inherit'] })
    child.on('exit', (code) => code === 0 ? resolve() : reject(new Error(`seeding ${kind} ${target} failed (${code})`)))
  })
}

/** A fresh copy of a cached, seeded SQLite file (seeded first if not cached). */
async function seededSqlite (kind: 'plugin' | 'baseline', plan: Plan, dest: string): Promise<void> {
  mkdirSync(CACHE, { recursive: true })
  const cached = join(CACHE, `${kind}-${plan.users}-${sourceKey(plan, kind)}.db`)
  if (!existsSync(cached)) {
    const tmp = `${cached}.tmp`
    rmSync(tmp, { force: true })
    await seedProcess(kind, kind === 'plugin' ? `sqlite:${tmp}` : tmp, plan)
    renameSync(tmp, cached)
  }
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${dest}${suffix}`, { force: true })
  copyFileSync(cached, dest)
}

async function pgAdmin<T> (fn: (client: any) => Promise<T>): Promise<T> {
  const pg = await import('pg')
  const Client = pg.default?.Client ?? (pg as any).Client
  const admin = new URL(PG_URL)
  admin.pathname = '/postgres'
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 2000 })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** A fresh copy (CREATE DATABASE … TEMPLATE) of a cached, seeded PostgreSQL database. */
async function seededPostgres (plan: Plan): Promise<void> {
  const target = new URL(PG_URL).pathname.slice(1)
  const template = `${target}_tpl_${sourceKey(plan, 'plugin-pg')}`
  const exists = await pgAdmin(async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [template])).rowCount > 0)
  if (!exists) {
    const url = new URL(PG_URL)
    url.pathname = `/${template}_tmp`
    await seedProcess('plugin', url.toString(), plan)
    await pgAdmin(async (c) => c.query(`ALTER DATABASE ${template}_tmp RENAME TO ${template}`))
  }
  await pgAdmin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${target} WITH (FORCE)`)
    await c.query(`CREATE DATABASE ${target} TEMPLATE ${template}`)
  })
}

async function postgresReachable (): Promise<boolean> {
  try {
    const pg = await import('pg')
    const Client = pg.default?.Client ?? (pg as any).Client
    const admin = new URL(PG_URL)
    admin.pathname = '/postgres'
    const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 2000 })
    await client.connect()
    await client.end()
    return true
  } catch {
    return false
  }
}

/**
 * The pragmas the plugin's own SQLite connection ends up with, read from
 * src/db/connect.ts at work, on a file that is already in WAL mode when it is
 * opened, as the bench's files are (and a production file after its first
 * start): better-sqlite3 is built with SQLITE_DEFAULT_WAL_SYNCHRONOUS=1, so
 * such a connection gets synchronous=NORMAL, while the very first connection
 * to a new file, switched to WAL after opening, keeps FULL.
 */
async function pluginSqlitePragmas (): Promise<Record<string, string | number>> {
  const probe = join(DATA, 'pragma-probe.db')
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${probe}${suffix}`, { force: true })
  await (await openDatabase(`sqlite:${probe}`)).db.destroy()
  const { db } = await openDatabase(`sqlite:${probe}`)
  const out: Record<string, string | number> = {}
  for (const name of ['journal_mode', 'synchronous', 'busy_timeout', 'cache_size', 'mmap_size', 'temp_store', 'wal_autocheckpoint', 'foreign_keys']) {
    const { rows } = await sql.raw(`PRAGMA ${name}`).execute(db)
    const row = rows[0] as Record<string, string | number> | undefined
    if (row !== undefined) out[name] = Object.values(row)[0]
  }
  await db.destroy()
  return out
}

// --- servers -------------------------------------------------------------------

interface Server {
  name: string
  kind: 'plugin' | 'baseline'
  child: ChildProcess
  url: string
  peakRss: number
  /** RSS once set up (access tokens made), before the first block. */
  startRss: number
  /** Seeded users and how the loader walks them. */
  pool: UserPool
  access: string[]
}

async function startServer (name: string, kind: 'plugin' | 'baseline', env: Record<string, string>, pool: UserPool, nodeArgs: string[] = []): Promise<Server> {
  // The server's clock and its users' codes follow the same bench clock.
  const script = join(BUILD, `bench/${kind}-server.js`)
  const command = hasTaskset ? 'taskset' : process.execPath
  const args = hasTaskset ? ['-c', '0', process.execPath, ...nodeArgs, script] : [...nodeArgs, script]
  const child = spawn(command, args, { env: { ...process.env, ...env, BENCH_T0: String(T0), BENCH_SPEED: String(pool.speed) }, stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /LISTENING (\d+)/.exec(out)
      if (match !== null) resolve(Number(match[1]))
    })
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}) before listening`)))
  })
  return { name, kind, child, url: `http://127.0.0.1:${port}`, peakRss: 0, startRss: 0, pool, access: [] }
}

function rssOf (pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? 0 : Number(match[1]) * 1024
  } catch {
    return 0
  }
}

async function stopServer (server: Server): Promise<void> {
  if (server.child.exitCode !== null) return
  const exited = new Promise((resolve) => server.child.on('exit', resolve))
  server.child.kill('SIGTERM')
  await exited
}

// --- request generators ---------------------------------------------------------

/**
 * Who the next request is for. A login attempt is good for one verify and a
 * TOTP step is accepted once per method, so every verify uses a seeded attempt
 * never used before, of a user whose last accepted step is older than the
 * step its code is for (see README, "Fresh codes and tokens").
 */
class UserPool {
  private verifyCursor = 0
  private backupCursor = 0
  private refreshCursor = 0
  private loginCursor = 0
  private readonly lastStep: Float64Array
  private readonly nextAttempt: Uint16Array
  private readonly codeOfStep = new Map<number, string>()
  starved = 0

  private readonly clock: () => number

  constructor (readonly users: number, readonly attemptsPerUser: number, readonly speed = 1) {
    this.clock = benchClock(T0, speed)
    this.lastStep = new Float64Array(users).fill(-1)
    this.nextAttempt = new Uint16Array(users)
  }

  private code (step: number): string {
    let code = this.codeOfStep.get(step)
    if (code === undefined) {
      if (this.codeOfStep.size > 16) this.codeOfStep.clear()
      code = totpForStep(TOTP_SECRET_BYTES, step)
      this.codeOfStep.set(step, code)
    }
    return code
  }

  verify (): { ephemeral_token: string, code: string } {
    const current = stepAt(this.clock())
    for (let tries = 0; tries < this.users; tries++) {
      const u = this.verifyCursor
      this.verifyCursor = (u + 1) % this.users
      if (this.nextAttempt[u] >= this.attemptsPerUser) continue
      // The newest step the server accepts (its window is ±1): the code stays
      // good for two to three steps after it is sent.
      const step = current + 1
      if (this.lastStep[u] >= step) continue
      this.lastStep[u] = step
      return { ephemeral_token: seededToken('v', u, this.nextAttempt[u]++), code: this.code(step) }
    }
    this.starved++
    return { ephemeral_token: 'starved', code: '000000' }
  }

  backup (): { ephemeral_token: string, code: string } {
    const u = this.backupCursor++
    if (u >= this.users) this.starved++
    return { ephemeral_token: seededToken('b', u % this.users), code: BACKUP_CODES[0].match(/.{4}/g)!.join('-') }
  }

  refresh (): { refresh: string } {
    const u = this.refreshCursor++
    if (u >= this.users) this.starved++
    return { refresh: seededToken('r', u % this.users) }
  }

  login (): { username: string, password: string } {
    const u = this.loginCursor
    this.loginCursor = (u + 7919) % this.users
    return { username: username(u), password: PASSWORD }
  }
}

function requestFor (server: Server, target: Target): autocannon.Request {
  const json = (path: string, body: () => unknown): autocannon.Request => ({
    method: 'POST', path, headers: { 'content-type': 'application/json' },
    setupRequest: (req: any) => ({ ...req, body: JSON.stringify(body()) }),
  })
  let i = 0
  const get = (path: string): autocannon.Request => ({
    method: 'GET', path,
    setupRequest: (req: any) => ({ ...req, headers: { authorization: `Bearer ${server.access[i++ % server.access.length]}` } }),
  })
  switch (target) {
    case 'verify': return json('/api/auth/login/verify/', () => server.pool.verify())
    case 'backup_verify': return json('/api/auth/login/verify/', () => server.pool.backup())
    case 'refresh': return json('/api/auth/token/refresh/', () => server.pool.refresh())
    case 'login': return json('/api/auth/login/', () => server.pool.login())
    case 'mfa_list': return get('/api/auth/mfa/')
    case 'host_route': return get('/api/hello')
  }
}

/** Access tokens for the GET targets, from real verifies (each one checked). */
async function collectAccessTokens (server: Server, count: number): Promise<void> {
  // Wakes the verify route up (first-call compilation) with a token that does not exist.
  await fetch(`${server.url}/api/auth/login/verify/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ephemeral_token: 'warm-up', code: '000000' }) })
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${server.url}/api/auth/login/verify/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(server.pool.verify()) })
    const body = await res.json() as { access?: string }
    if (res.status !== 200 || typeof body.access !== 'string') throw new Error(`${server.name}: setup verify answered ${res.status} ${JSON.stringify(body)}`)
    server.access.push(body.access)
  }
}

// --- blocks ----------------------------------------------------------------------

interface Block { target: Target | 'verify_1k', server: string, requests: number, seconds: number, p50: number, p99: number, cpuMs: number }

/** CPU time (user + system, all threads) the process has used so far, in ms: /proc/PID/stat fields 14 and 15. */
function cpuMsOf (pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100

async function runBlock (server: Server, target: Target, seconds: number): Promise<Block> {
  const failures: string[] = []
  const starvedBefore = server.pool.starved
  const request = requestFor(server, target)
  const cpuBefore = cpuMsOf(server.child.pid!)
  const result = await autocannon({
    url: server.url, connections: CONNECTIONS, duration: seconds, timeout: 60,
    requests: [{ ...request, onResponse: (status: number, body: string) => { if ((status < 200 || status > 299) && failures.length < 3) failures.push(`${status} ${body.slice(0, 200)}`) } }] as any,
  })
  const bad = result.non2xx + result.errors + result.timeouts
  if (bad > 0 || server.pool.starved > starvedBefore) {
    throw new Error(`${target} on ${server.name}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, ${server.pool.starved - starvedBefore} requests without a fresh seeded token; first: ${failures.join(' | ')}` +
      (failures.some((f) => f.includes('INVALID_CODE')) ? ' (a TOTP code that reached the server after its window: the machine stalled for over a second, or --speed is too high)' : '') +
      (server.pool.starved > starvedBefore ? ' (the seeded pool ran dry: shorter blocks, or a higher --speed for the 1k table)' : ''))
  }
  const cpuMs = cpuMsOf(server.child.pid!) - cpuBefore
  return { target, server: server.name, requests: result.requests.total, seconds: result.duration, p50: result.latency.p50, p99: result.latency.p99, cpuMs }
}

// --- output ----------------------------------------------------------------------

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function aggregate (blocks: Block[], target: string, server: string): { rps: number, p50: number, p99: number, requests: number, cpuPerRequest: number } | undefined {
  const mine = blocks.filter((b) => b.target === target && b.server === server)
  if (mine.length === 0) return undefined
  const requests = mine.reduce((a, b) => a + b.requests, 0)
  const seconds = mine.reduce((a, b) => a + b.seconds, 0)
  const cpuMs = mine.reduce((a, b) => a + b.cpuMs, 0)
  return { rps: requests / seconds, p50: median(mine.map((b) => b.p50)), p99: median(mine.map((b) => b.p99)), requests, cpuPerRequest: cpuMs / requests }
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MB`

function machine (): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  return `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GB, Node ${process.version}, ${hasTaskset ? 'servers on core 0, loader on core 1 (taskset)' : 'no taskset: not pinned'}`
}

// --- modes -----------------------------------------------------------------------

async function prepareSqlite (): Promise<{ pragmas: Record<string, string | number>, big: Plan, small: Plan }> {
  mkdirSync(DATA, { recursive: true })
  const big: Plan = { users: CONFIG.users, attemptsPerUser: 1, codesPerUser: CONFIG.codesPerUser }
  const small: Plan = { users: CONFIG.smallUsers, attemptsPerUser: CONFIG.smallAttempts, codesPerUser: CONFIG.codesPerUser }
  const started = Date.now()
  await Promise.all([
    seededSqlite('plugin', big, join(DATA, 'plugin-big.db')),
    seededSqlite('baseline', big, join(DATA, 'baseline-big.db')),
  ])
  await seededSqlite('plugin', small, join(DATA, 'plugin-small.db'))
  log(`databases ready in ${((Date.now() - started) / 1000).toFixed(0)} s (${CONFIG.users.toLocaleString('en')} and ${CONFIG.smallUsers.toLocaleString('en')} users)`)
  const pragmas = await pluginSqlitePragmas()
  if (SYNC_OVERRIDE !== undefined) pragmas.synchronous = SYNC_OVERRIDE
  return { pragmas, big, small }
}

async function bench (): Promise<void> {
  const started = Date.now()
  await buildServers()
  const { pragmas, big, small } = await prepareSqlite()
  const withPg = argv.has('--no-pg') ? false : (argv.has('--pg') || !QUICK) && await postgresReachable()
  let pgPlan: Plan | undefined
  if (withPg) {
    pgPlan = { users: CONFIG.pgUsers, attemptsPerUser: 1, codesPerUser: CONFIG.codesPerUser }
    const t = Date.now()
    await seededPostgres(pgPlan)
    log(`PostgreSQL database ready in ${((Date.now() - t) / 1000).toFixed(0)} s`)
  }
  pinSelf()

  const servers: Server[] = []
  let sampler: NodeJS.Timeout | undefined
  try {
    const override: Record<string, string> = SYNC_OVERRIDE === undefined ? {} : { BENCH_SQLITE_PRAGMAS: JSON.stringify(pragmas) }
    servers.push(await startServer('plugin/sqlite', 'plugin', { BENCH_DATABASE: `sqlite:${join(DATA, 'plugin-big.db')}`, ...override }, new UserPool(big.users, 1)))
    servers.push(await startServer('baseline/sqlite', 'baseline', { BENCH_DB: join(DATA, 'baseline-big.db'), BENCH_PRAGMAS: JSON.stringify(pragmas) }, new UserPool(big.users, 1)))
    const smallServer = await startServer('plugin/sqlite 1k', 'plugin', { BENCH_DATABASE: `sqlite:${join(DATA, 'plugin-small.db')}`, ...override }, new UserPool(small.users, small.attemptsPerUser, SMALL_SPEED))
    servers.push(smallServer)
    if (pgPlan !== undefined) servers.push(await startServer('plugin/postgres', 'plugin', { BENCH_DATABASE: PG_URL }, new UserPool(pgPlan.users, 1)))
    const main = servers.filter((s) => s !== smallServer)
    for (const server of main) await collectAccessTokens(server, 200)
    for (const s of servers) s.startRss = rssOf(s.child.pid!)
    sampler = setInterval(() => { for (const s of servers) s.peakRss = Math.max(s.peakRss, rssOf(s.child.pid!)) }, 200)

    const blocks: Block[] = []
    const rounds = CONFIG.rounds + 1
    for (let round = 0; round < rounds; round++) {
      const warm = round === 0
      log(warm ? 'warm-up round' : `round ${round}/${CONFIG.rounds}`)
      for (const target of TARGETS) {
        // Alternate who goes first, so neither always runs on a warmer machine.
        const order = round % 2 === 0 ? main : [...main].reverse()
        for (const server of order) {
          const block = await runBlock(server, target, warm ? CONFIG.warmup : CONFIG.seconds[target])
          if (!warm) blocks.push(block)
        }
        if (target === 'verify') {
          const block = await runBlock(smallServer, 'verify', warm ? CONFIG.warmup : CONFIG.scaleSeconds)
          if (!warm) blocks.push({ ...block, target: 'verify_1k' })
        }
      }
    }
    clearInterval(sampler)
    for (const s of servers) s.peakRss = Math.max(s.peakRss, rssOf(s.child.pid!))

    // --- the table ---
    const out: string[] = []
    out.push(`fastify-auth-kit bench ${QUICK ? '(quick)' : '(full)'} · ${new Date().toISOString().slice(0, 16)}Z · ${machine()}`)
    out.push(`autocannon ${CONNECTIONS} connections over HTTP on 127.0.0.1; ${CONFIG.rounds} interleaved rounds after a warm-up; ${SYNC_OVERRIDE === undefined ? 'SQLite pragmas of the plugin (mirrored by the baseline)' : `WHAT-IF: both servers at synchronous=${SYNC_OVERRIDE}, the plugin on a Kysely instance the bench made; pragmas`}: ${Object.entries(pragmas).map(([k, v]) => `${k}=${v}`).join(' ')}`)
    out.push(`users: ${big.users.toLocaleString('en')} (SQLite)${pgPlan === undefined ? '' : `, ${pgPlan.users.toLocaleString('en')} (PostgreSQL)`}; backup codes per user: ${CONFIG.codesPerUser}`)
    out.push('')
    out.push(`${'target'.padEnd(14)} ${'server'.padEnd(18)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'requests'.padStart(9)} ${'CPU ms/req'.padStart(10)} ${'peak RSS'.padStart(9)}`)
    const row = (target: string, s: Server): void => {
      const a = aggregate(blocks, target, s.name)
      if (a === undefined) return
      out.push(`${target.padEnd(14)} ${s.name.padEnd(18)} ${a.rps.toFixed(1).padStart(9)} ${a.p50.toFixed(1).padStart(8)} ${a.p99.toFixed(1).padStart(8)} ${String(a.requests).padStart(9)} ${a.cpuPerRequest.toFixed(2).padStart(10)} ${mb(s.peakRss).padStart(9)}`)
    }
    for (const target of TARGETS) for (const s of main) row(target, s)
    row('verify_1k', smallServer)
    out.push('every response of every block was 2xx (any other status stops the run)')
    out.push('')

    const rps = (target: string, name: string): number => aggregate(blocks, target, name)!.rps
    const ratios: Array<[string, number]> = TARGETS.map((t) => [t, rps(t, 'plugin/sqlite') / rps(t, 'baseline/sqlite')])
    ratios.push(['rss', servers[1].peakRss / servers[0].peakRss])
    ratios.push(['users_scale', rps('verify', 'plugin/sqlite') / rps('verify_1k', 'plugin/sqlite 1k')])
    out.push(`rss = baseline peak RSS / plugin peak RSS (SQLite, ${big.users.toLocaleString('en')} users, same load): ${mb(servers[1].peakRss)} / ${mb(servers[0].peakRss)}; users_scale = plugin verify req/s with ${big.users.toLocaleString('en')} users / with ${small.users.toLocaleString('en')}`)
    out.push(`RSS once set up, before the first block: ${servers.map((s) => `${s.name} ${mb(s.startRss)}`).join(', ')}`)
    // On a machine shared with other work the CPU a server gets moves from block to block; the CPU
    // time it spends per request does not, so these say more about the code than the req/s ratios.
    const cpu = (target: string, name: string): number => aggregate(blocks, target, name)!.cpuPerRequest
    out.push(`CPU per request, baseline ÷ plugin (1.00: the plugin spends as much CPU per request as the baseline): ${TARGETS.map((t) => `${t} ${(cpu(t, 'baseline/sqlite') / cpu(t, 'plugin/sqlite')).toFixed(2)}`).join(', ')}`)
    out.push(`total time ${((Date.now() - started) / 1000).toFixed(0)} s`)
    for (const [name, value] of ratios) out.push(`ratio ${name}: ${value.toFixed(2)} (target >= ${TARGET_RATIOS[name].toFixed(2)})`)
    process.stdout.write(`${out.join('\n')}\n`)
  } finally {
    if (sampler !== undefined) clearInterval(sampler)
    await Promise.all(servers.map(stopServer))
  }
}

/** SQL statements per request of each target, counted in the driver (no timing). */
async function sqlCount (): Promise<void> {
  await buildServers()
  const { pragmas, small } = await prepareSqlite()
  await seededSqlite('baseline', small, join(DATA, 'baseline-small.db'))
  const servers = [
    await startServer('plugin/sqlite', 'plugin', { BENCH_DATABASE: `sqlite:${join(DATA, 'plugin-small.db')}`, BENCH_SQL_LOG: '1' }, new UserPool(small.users, small.attemptsPerUser, SMALL_SPEED)),
    await startServer('baseline/sqlite', 'baseline', { BENCH_DB: join(DATA, 'baseline-small.db'), BENCH_PRAGMAS: JSON.stringify(pragmas), BENCH_SQL_LOG: '1' }, new UserPool(small.users, small.attemptsPerUser, SMALL_SPEED)),
  ]
  const N = 100
  const perStatement: string[] = []
  try {
    const lines = [`SQL statements per request (mean of ${N} requests made one by one, counted in better-sqlite3, BEGIN/COMMIT included; commits = COMMITs plus writes outside a transaction, each its own commit; µs = time inside better-sqlite3's calls, commits and checkpoints included):`]
    for (const server of servers) {
      await collectAccessTokens(server, 5)
      await fetch(`${server.url}/__bench/sql`)
      for (const target of TARGETS) {
        const request = requestFor(server, target) as any
        for (let i = 0; i < N; i++) {
          const req = request.setupRequest({ ...request })
          const res = await fetch(`${server.url}${req.path}`, { method: req.method, headers: req.headers, body: req.body })
          if (res.status < 200 || res.status > 299) throw new Error(`${server.name} ${target}: ${res.status} ${await res.text()}`)
        }
        const { counts, statements } = await (await fetch(`${server.url}/__bench/sql?statements=1`)).json() as { counts: Record<string, number>, statements: Array<{ source: string, calls: number, micros: number }> }
        perStatement.push(`${target} on ${server.name}, mean µs in SQLite per request, by statement:`,
          ...statements.map((st) => `  ${(st.micros / N).toFixed(1).padStart(7)} µs  ${(st.calls / N).toFixed(2)}×  ${st.source}`))
        const { commits = 0, 'µs': micros = 0, ...kinds } = counts
        const total = Object.values(kinds).reduce((a, b) => a + b, 0)
        lines.push(`  ${target.padEnd(14)} ${server.name.padEnd(16)} ${(total / N).toFixed(1).padStart(5)} statements, ${(commits / N).toFixed(1)} commits, ${(micros / N).toFixed(0).padStart(4)} µs in SQLite  (${Object.entries(kinds).map(([k, v]) => `${k} ${(v / N).toFixed(1)}`).join(', ')})`)
      }
    }
    // Each statement in the order a request first ran it, with its mean time and calls per request.
    lines.push(...perStatement)
    process.stdout.write(`${lines.join('\n')}\n`)
  } finally {
    await Promise.all(servers.map(stopServer))
  }
}

/** The V8 CPU profile of the plugin server while autocannon drives one target (start-up left out). */
async function profile (): Promise<void> {
  const target: Target = TARGETS.includes(profileArg as Target) ? profileArg as Target : 'verify'
  await buildServers()
  const { pragmas, big } = await prepareSqlite()
  pinSelf()
  const dir = join(DATA, 'profile')
  mkdirSync(dir, { recursive: true })
  const override: Record<string, string> = SYNC_OVERRIDE === undefined ? {} : { BENCH_SQLITE_PRAGMAS: JSON.stringify(pragmas) }
  // --baseline: the hand-written server instead, for a side-by-side reading of the two profiles.
  const ofBaseline = argv.has('--baseline')
  const server = ofBaseline
    ? await startServer('baseline/sqlite', 'baseline', { BENCH_DB: join(DATA, 'baseline-big.db'), BENCH_PRAGMAS: JSON.stringify(pragmas), BENCH_PROFILE_DIR: dir }, new UserPool(big.users, 1))
    : await startServer('plugin/sqlite', 'plugin', { BENCH_DATABASE: `sqlite:${join(DATA, 'plugin-big.db')}`, BENCH_PROFILE_DIR: dir, ...override }, new UserPool(big.users, 1))
  let file: string
  let rate: number
  let cpuPerRequest: number
  try {
    await collectAccessTokens(server, 20)
    await runBlock(server, target, 3)
    await fetch(`${server.url}/__bench/profile/start`, { method: 'POST' })
    const block = await runBlock(server, target, QUICK ? 10 : 20)
    file = ((await (await fetch(`${server.url}/__bench/profile/stop?name=${ofBaseline ? 'baseline_' : ''}${target}`, { method: 'POST' })).json()) as { file: string }).file
    rate = block.requests / block.seconds
    cpuPerRequest = block.cpuMs / block.requests
  } finally {
    await stopServer(server)
  }
  process.stdout.write(`CPU profile ${relative(ROOT, file)}: ${server.kind} ${target} under load (${CONFIG.users.toLocaleString('en')} users, ${rate.toFixed(0)} req/s and ${cpuPerRequest.toFixed(2)} CPU ms a request while profiled, synchronous=${pragmas.synchronous}):\n${formatProfile(summarizeProfile(file))}\n`)
}

try {
  if (MODE === 'sql') await sqlCount()
  else if (MODE === 'profile') await profile()
  else await bench()
} catch (err) {
  process.stderr.write(`\nBENCH FAILED: ${(err as Error).message}\n`)
  process.exitCode = 1
}

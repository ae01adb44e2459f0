import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { generate } from 'otplib'
import type { Kysely } from 'kysely'
import type tap from 'tap'
import type { AuthKitOptions } from '../../src/index.js'
import { openDatabase } from '../../src/db/connect.js'
import type { Database } from '../../src/db/types.js'
import { SECRET, P, secretOf } from './app.js'
import { dialects, type Dialect } from './dialects.js'
import { codeIn, recipientOf, startSmtp, type Mailbox } from './smtp.js'

// Real server processes (node --import=tsx test/fixtures/mp-server.ts), each
// on its own loopback port, all on one database, mailing a real SMTP server
// the test owns. No shared clock across processes: the real one, and TOTP
// codes computed here from the secret in the QR link.

const fixture = fileURLToPath(new URL('../fixtures/mp-server.ts', import.meta.url))
const root = fileURLToPath(new URL('../..', import.meta.url))

export interface Answer {
  status: number
  body: any
  headers: Headers | undefined
  /** Set when no HTTP answer came (the process died, the connection broke). */
  error?: string
}

export interface ServerProcess {
  port: number
  pid: number
  /** Resolves with the exit code or signal once the process has ended. */
  exited: Promise<string>
  post: (url: string, body: unknown, access?: string) => Promise<Answer>
  get: (url: string, access?: string) => Promise<Answer>
  kill: (signal?: NodeJS.Signals) => Promise<string>
  /** What the process wrote on stderr (its error log). */
  log: () => string
}

export interface ServerSettings {
  database: string
  smtpPort: number
  smtpTimeout?: number
  /** JSON-serialisable plugin options (the handlers are always app and email). */
  options?: Partial<AuthKitOptions>
  rateLimit?: { redis: string, max: number, timeWindow: number, nameSpace: string }
}

function childEnv (settings: ServerSettings): NodeJS.ProcessEnv {
  // Nothing of the test runner's own instrumentation reaches the servers.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'NODE_OPTIONS' && !key.startsWith('TAP')))
  return { ...env, AUTH_KIT_MP: JSON.stringify({ secret: SECRET, ...settings }) }
}

async function request (port: number, method: string, url: string, body: unknown, access?: string): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (access !== undefined) headers.authorization = `Bearer ${access}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  try {
    const res = await fetch(`http://127.0.0.1:${port}${P}${url}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await res.text()
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
  } catch (err) {
    return { status: 0, body: undefined, headers: undefined, error: String((err as Error).cause ?? err) }
  }
}

/** Starts one server process and waits until it listens. */
export async function startServer (settings: ServerSettings): Promise<ServerProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import=tsx', fixture], { cwd: root, env: childEnv(settings), stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let stdout = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `exit ${String(code)}`)))
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8')
      const line = /\{"listening":(\d+)\}/.exec(stdout)
      if (line !== null) resolve(Number(line[1]))
    })
    exited.then((how) => reject(new Error(`server process ended (${how}) before listening:\n${stderr}`)))
  })
  return {
    port,
    pid: child.pid!,
    exited,
    post: async (url, body, access) => request(port, 'POST', url, body, access),
    get: async (url, access) => request(port, 'GET', url, undefined, access),
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
    log: () => stderr,
  }
}

/** A loopback "mail server" that accepts connections and never says a word. */
export async function startStalledSmtp (): Promise<{ port: number, connections: () => number, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  let seen = 0
  const server = createServer((socket) => { seen++; sockets.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  return {
    port: (server.address() as { port: number }).port,
    connections: () => seen,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

export interface Cluster {
  dialect: Dialect['name']
  servers: ServerProcess[]
  mailbox: Mailbox
  /** The shared database, for checking invariants behind the API. */
  db: Kysely<Database>
  url: string
  /** The i-th process, round robin: spreads requests over all of them. */
  at: (i: number) => ServerProcess
}

interface TapLike {
  teardown: (fn: () => unknown) => void
  test: (name: string, ...rest: any[]) => Promise<any>
}

/**
 * Runs `body` against N server processes on one fresh database of `dialect`,
 * with an SMTP server on loopback; the processes are killed, the database
 * dropped at teardown. An unreachable database server skips with the reason.
 */
export async function withCluster (t: TapLike, dialect: Dialect, n: number, options: Partial<AuthKitOptions>, body: (t: typeof tap, cluster: Cluster) => Promise<void>): Promise<void> {
  const scratch = await dialect.create()
  if ('unavailable' in scratch) {
    await t.test(dialect.name, { skip: `${dialect.name} skipped: ${scratch.unavailable}` }, async () => {})
    return
  }
  await t.test(`${dialect.name}, ${n} server processes on one database`, async (t: typeof tap) => {
    const mailbox = await startSmtp()
    const servers: ServerProcess[] = []
    let db: Kysely<Database> | undefined
    t.teardown(async () => {
      await Promise.all(servers.map(async (s) => s.kill('SIGKILL')))
      await db?.destroy()
      await mailbox.close()
      await scratch.drop()
    })
    // The first process runs the migrations alone; the others find them done.
    servers.push(await startServer({ database: scratch.url, smtpPort: mailbox.port, options }))
    servers.push(...await Promise.all(Array.from({ length: n - 1 }, async () => startServer({ database: scratch.url, smtpPort: mailbox.port, options }))))
    db = (await openDatabase(scratch.url)).db
    await body(t, { dialect: dialect.name, servers, mailbox, db, url: scratch.url, at: (i) => servers[i % servers.length] })
  })
}

/** The server dialects the multi-process suites run on (AUTH_KIT_MP_DIALECTS=mysql narrows them while working on one). */
const only = process.env.AUTH_KIT_MP_DIALECTS?.split(',')
export const serverDialects = dialects.filter((d) => d.name !== 'sqlite' && (only === undefined || only.includes(d.name)))

// ---------------------------------------------------------------- accounts

export const PASSWORD = 'correct horse battery'
let counter = 0
export const uniqueName = (prefix = 'mp') => `${prefix}${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 7)}`

/** The TOTP code of `secret` at `offsetSteps` steps from now, by the real clock. */
export async function totpAt (secret: string, offsetSteps = 0): Promise<string> {
  return generate({ secret, period: 30, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 })
}

/** The code in the newest mail to `address`, waiting a little for it to land. */
export async function latestCode (mailbox: Mailbox, address: string, after = 0): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const mails = mailbox.messages.slice(after).filter((m) => recipientOf(m) === address.toLowerCase() || recipientOf(m) === address)
    if (mails.length > 0) return codeIn(mails[mails.length - 1])
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`no mail to ${address}`)
}

function must (what: string, answer: Answer, status: number): any {
  if (answer.status !== status) throw new Error(`${what}: expected ${status}, got ${answer.status} ${JSON.stringify(answer.body) ?? answer.error}`)
  return answer.body
}

export interface Account {
  id: string
  username: string
  email: string
  password: string
  /** Access token of the last login (second-factor login once a method is active). */
  access: string
  refresh: string
}

/** Registers and logs in (one step). */
export async function newAccount (server: ServerProcess, name = uniqueName()): Promise<Account> {
  const email = `${name}@mail.test`
  const reg = must('registration', await server.post('/registration/', { username: name, email, password: PASSWORD }), 201)
  const login = must('login', await server.post('/login/', { username: name, password: PASSWORD }), 200)
  return { id: reg.user.id, username: name, email, password: PASSWORD, access: login.access, refresh: login.refresh }
}

/** Step 1 of a login that must ask for a second step; the ephemeral token. */
export async function startLogin (server: ServerProcess, account: Account): Promise<string> {
  const step1 = must('login step 1', await server.post('/login/', { username: account.username, password: account.password }), 200)
  if (step1.mfa_enabled !== true) throw new Error(`login step 1: no second step asked: ${JSON.stringify(step1)}`)
  return step1.ephemeral_token
}

export interface AppAccount extends Account {
  secret: string
  /** Unused backup codes of the app method; take them with `.pop()`. */
  appBackup: string[]
}

/**
 * An account whose app method is active and primary (confirmed with the
 * current TOTP step), with an access token from a second-factor login (a
 * backup code), so every method route is open to it.
 */
export async function appAccount (server: ServerProcess): Promise<AppAccount> {
  const account = await newAccount(server)
  const created = must('create app', await server.post('/mfa/', { method: 'app' }, account.access), 201)
  const secret = secretOf(created.setup_data.qr_link)
  must('confirm app', await server.post('/mfa/confirm/', { method: 'app', code: await totpAt(secret) }, account.access), 200)
  const appBackup = [...created.backup_codes as string[]]
  const tokens = must('login verify', await server.post('/login/verify/', { ephemeral_token: await startLogin(server, account), code: appBackup.pop() }), 200)
  return { ...account, access: tokens.access, refresh: tokens.refresh, secret, appBackup }
}

export interface TwoMethodAccount extends AppAccount {
  emailBackup: string[]
}

/** App (primary) and email, both active. */
export async function appAndEmailAccount (server: ServerProcess, mailbox: Mailbox): Promise<TwoMethodAccount> {
  const account = await appAccount(server)
  const before = mailbox.messages.length
  const created = must('create email', await server.post('/mfa/', { method: 'email' }, account.access), 201)
  must('confirm email', await server.post('/mfa/confirm/', { method: 'email', code: await latestCode(mailbox, account.email, before) }, account.access), 200)
  return { ...account, emailBackup: [...created.backup_codes as string[]] }
}

// ---------------------------------------------------------------- database checks

export interface MethodState { name: string, active: boolean, primary: boolean }

export async function methodsInDb (db: Kysely<Database>, userId: string): Promise<MethodState[]> {
  const rows = await db.selectFrom('auth_kit_mfa_method').select(['name', 'is_active', 'is_primary']).where('user_id', '=', userId).orderBy('name').execute()
  return rows.map((r) => ({ name: r.name, active: Number(r.is_active) === 1, primary: Number(r.is_primary) === 1 }))
}

/** Backup-code rows whose method no longer exists. */
export async function orphanBackupCodes (db: Kysely<Database>, userId: string): Promise<number> {
  const rows = await db.selectFrom('auth_kit_backup_code as b')
    .leftJoin('auth_kit_mfa_method as m', 'm.id', 'b.method_id')
    .select('b.id').where('b.user_id', '=', userId).where('m.id', 'is', null).execute()
  return rows.length
}

export async function backupCodeIds (db: Kysely<Database>, userId: string, method: string): Promise<string[]> {
  const rows = await db.selectFrom('auth_kit_backup_code as b').innerJoin('auth_kit_mfa_method as m', 'm.id', 'b.method_id')
    .select('b.id').where('b.user_id', '=', userId).where('m.name', '=', method).orderBy('b.id').execute()
  return rows.map((r) => r.id)
}

export async function wrongCodeCount (db: Kysely<Database>, userId: string): Promise<number> {
  const row = await db.selectFrom('auth_kit_user_lock').select('failures').where('user_id', '=', userId).executeTakeFirst()
  return row === undefined ? 0 : Number(row.failures)
}

/** How many answers had each status (and code), for the test's comments. */
export function tally (answers: Answer[]): string {
  const counts = new Map<string, number>()
  for (const a of answers) {
    const key = a.status === 0 ? `no answer (${a.error ?? ''})` : `${a.status}${a.body?.code !== undefined ? ` ${a.body.code as string}` : ''}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].map(([k, v]) => `${v}× ${k}`).join(', ')
}

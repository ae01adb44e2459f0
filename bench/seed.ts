/**
 * Seeds the benchmark databases by writing rows directly, in bulk, so 300,000
 * users take seconds rather than hours of scrypt and HTTP: every user shares
 * one password hash and one set of backup-code hashes (each made once), while
 * everything bound to a user (sealed TOTP secret, backup-code lookup tags,
 * token hashes) is made per user exactly as the plugin would store it.
 *
 * The plugin's rows follow its migrations and its storage formats (sealed
 * secret bound to `totp:USER:app`, keyed hashes from the Keyring): if the lead
 * changes either, this file must follow, and the run says so loudly (every
 * verify would answer 401).
 *
 * Run as a script (the harness starts one per database, in parallel):
 *   node seed.js plugin  sqlite:PATH|postgres://… USERS ATTEMPTS_PER_USER CODES_PER_USER
 *   node seed.js baseline PATH                   USERS ATTEMPTS_PER_USER CODES_PER_USER
 */
import { createCipheriv, createHash, randomBytes, randomUUID } from 'node:crypto'
import { Keyring, PASSWORD_COST, BACKUP_CODE_COST, slowHash } from '../src/crypto.js'
import { openDatabase, migrateToLatest } from '../src/db/connect.js'
import { BACKUP_CODES, FAR_FUTURE, PASSWORD, SECRET, TOTP_SECRET_BASE32, TOTP_SECRET_BYTES, seededToken, username } from './common.js'
import { BASELINE_SCHEMA, baselineKeys, sealBaselineSecret } from './baseline-store.js'

export interface SeedPlan {
  users: number
  /** Login attempts (kind 'v') per user: 1 for a big table, many for a small one. */
  attemptsPerUser: number
  codesPerUser: number
}

type Row = unknown[]

/** Buffers rows per table and writes them in large batches. */
interface Writer {
  add (table: string, columns: string[], row: Row): Promise<void>
  /** Runs a statement after every row is written (the purge of the history rows). */
  exec (sql: string): Promise<void>
  finish (): Promise<void>
}

/**
 * Expiry of the history rows: every user also gets one login attempt and one
 * refresh token (with its session) that expired a day before the run, written
 * between the live rows and deleted at the end, as each server's own purge
 * deletes them. A table that has seen traffic has free space in its pages; a
 * bulk load packs them full, and whether an update that lengthens a row (an
 * attempt's used_at, a refresh token's revoked_at, from NULL to a time) then
 * fits in its page or splits it came down to the row length: the plugin's
 * attempt rows left 4 bytes free a page and the baseline's 95, so every plugin
 * verify split a page (about 4.6 more pages written to the WAL a verify).
 */
const HISTORY_EXPIRES = Date.now() - 86_400_000

async function sqliteWriter (path: string): Promise<Writer> {
  const { default: SQLite } = await import('better-sqlite3')
  const db = new SQLite(path)
  // One pass, no journal: a failed seed is thrown away, never resumed.
  db.pragma('journal_mode = OFF')
  db.pragma('synchronous = OFF')
  db.pragma('cache_size = -2000000')
  const statements = new Map<string, ReturnType<typeof db.prepare>>()
  db.exec('BEGIN')
  return {
    async add (table, columns, row) {
      const sql = `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`
      let st = statements.get(sql)
      if (st === undefined) {
        st = db.prepare(sql)
        statements.set(sql, st)
      }
      st.run(row)
    },
    async exec (sql) {
      db.exec(sql)
    },
    async finish () {
      db.exec('COMMIT')
      db.pragma('journal_mode = WAL')
      db.close()
    },
  }
}

async function postgresWriter (url: string): Promise<Writer> {
  const pg = await import('pg')
  const Client = pg.default?.Client ?? (pg as any).Client
  const client = new Client({ connectionString: url })
  await client.connect()
  const buffers = new Map<string, { columns: string[], rows: Row[] }>()
  const flush = async (table: string): Promise<void> => {
    const buffer = buffers.get(table)
    if (buffer === undefined || buffer.rows.length === 0) return
    const params: unknown[] = []
    const tuples = buffer.rows.map((row) => `(${row.map((v) => { params.push(v); return `$${params.length}` }).join(', ')})`)
    await client.query(`INSERT INTO ${table} (${buffer.columns.join(', ')}) VALUES ${tuples.join(', ')}`, params)
    buffer.rows = []
  }
  return {
    async add (table, columns, row) {
      let buffer = buffers.get(table)
      if (buffer === undefined) buffers.set(table, buffer = { columns, rows: [] })
      buffer.rows.push(row)
      if (buffer.rows.length * columns.length >= 60_000) await flush(table)
    },
    async exec (sql) {
      for (const table of buffers.keys()) await flush(table)
      await client.query(sql)
    },
    async finish () {
      for (const table of buffers.keys()) await flush(table)
      await client.query('VACUUM ANALYZE')
      await client.end()
    },
  }
}

/** A fresh, empty PostgreSQL database (loopback only) for the plugin's run. */
export async function recreatePostgres (url: string): Promise<void> {
  const target = new URL(url)
  const name = target.pathname.slice(1)
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`)
  const admin = new URL(url)
  admin.pathname = '/postgres'
  const pg = await import('pg')
  const Client = pg.default?.Client ?? (pg as any).Client
  const client = new Client({ connectionString: admin.toString() })
  await client.connect()
  await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await client.query(`CREATE DATABASE ${name}`)
  await client.end()
}

/**
 * Keyring.encrypt's format (v1.kid.iv.body.tag, AES-256-GCM, AAD = context)
 * with IVs cut from one large random buffer: one getrandom call per 10,000
 * users instead of one per user. Checked against Keyring.decrypt below.
 */
function sealer (keyring: Keyring): (plain: string, context: string) => string {
  const key = keyring.current
  let pool = Buffer.alloc(0)
  let offset = 0
  return (plain, context) => {
    if (offset + 12 > pool.length) {
      pool = randomBytes(12 * 10_000)
      offset = 0
    }
    const iv = pool.subarray(offset, offset += 12)
    const cipher = createCipheriv('aes-256-gcm', key.encryption, iv)
    cipher.setAAD(Buffer.from(context))
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return ['v1', key.id, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
  }
}

/** The plugin's tables, through its own migrations, then rows as its repositories write them. */
export async function seedPlugin (database: string, plan: SeedPlan): Promise<void> {
  if (database.startsWith('postgres')) await recreatePostgres(database)
  const { db } = await openDatabase(database)
  await migrateToLatest(db)
  await db.destroy()
  const writer = database.startsWith('sqlite:') ? await sqliteWriter(database.slice('sqlite:'.length)) : await postgresWriter(database)

  const keyring = new Keyring([SECRET])
  const seal = sealer(keyring)
  const probe = seal(TOTP_SECRET_BASE32, 'totp:probe:app')
  if (keyring.decrypt(probe, 'totp:probe:app') !== TOTP_SECRET_BASE32) throw new Error('the seeder no longer seals secrets as Keyring does')
  const passwordHash = await slowHash(PASSWORD, PASSWORD_COST)
  const codeHashes = await Promise.all(BACKUP_CODES.map((code) => slowHash(code, BACKUP_CODE_COST)))
  const created = Date.now() - 86_400_000
  const userCols = ['id', 'username', 'username_key', 'email', 'email_key', 'password_hash', 'created_at']
  const methodCols = ['id', 'user_id', 'name', 'secret', 'is_active', 'is_primary', 'last_totp_step', 'created_at']
  const attemptCols = ['id', 'token_hash', 'user_id', 'method', 'failures', 'expires_at', 'used_at', 'created_at']
  const codeCols = ['id', 'method_id', 'user_id', 'lookup', 'code_hash', 'created_at']
  const refreshCols = ['id', 'family_id', 'user_id', 'token_hash', 'amr', 'expires_at', 'revoked_at', 'created_at']

  for (let i = 0; i < plan.users; i++) {
    const userId = randomUUID()
    const methodId = randomUUID()
    const name = username(i)
    await writer.add('auth_kit_user', userCols, [userId, name, name, `${name}@bench.test`, `${name}@bench.test`, passwordHash, created])
    // Logins resolve through the identifier table (rule 11).
    await writer.add('auth_kit_user_identifier', ['identifier_key', 'user_id', 'kind'], [name, userId, 'username'])
    await writer.add('auth_kit_user_identifier', ['identifier_key', 'user_id', 'kind'], [`${name}@bench.test`, userId, 'email'])
    await writer.add('auth_kit_mfa_method', methodCols, [methodId, userId, 'app', seal(TOTP_SECRET_BASE32, `totp:${userId}:app`), 1, 1, null, created])
    // Making a method takes the user's lock, which creates this row: every user with a method has one.
    await writer.add('auth_kit_user_lock', ['user_id', 'failures', 'lock_count', 'locked_until'], [userId, 0, 0, 0])
    for (let k = 0; k < plan.attemptsPerUser; k++) {
      await writer.add('auth_kit_login_attempt', attemptCols, [randomUUID(), keyring.hash(seededToken('v', i, k)), userId, 'app', 0, FAR_FUTURE, null, created])
    }
    await writer.add('auth_kit_login_attempt', attemptCols, [randomUUID(), keyring.hash(randomBytes(32).toString('base64url')), userId, 'app', 0, HISTORY_EXPIRES, null, created])
    await writer.add('auth_kit_login_attempt', attemptCols, [randomUUID(), keyring.hash(seededToken('b', i)), userId, 'app', 0, FAR_FUTURE, null, created])
    for (let c = 0; c < plan.codesPerUser; c++) {
      const lookup = keyring.hashes(`backup:${userId}:${BACKUP_CODES[c]}`)[0].slice(0, 12)
      await writer.add('auth_kit_backup_code', codeCols, [randomUUID(), methodId, userId, lookup, codeHashes[c], created])
    }
    // A refresh token belongs to a session (its chain), which authenticate also checks.
    const sessionId = randomUUID()
    await writer.add('auth_kit_session', ['id', 'user_id', 'amr', 'auth_time', 'setup_only', 'device_id', 'created_at', 'last_used_at', 'expires_at', 'revoked_at'], [sessionId, userId, 'pwd mfa', created, 0, null, created, created, FAR_FUTURE, null])
    const oldSessionId = randomUUID()
    await writer.add('auth_kit_session', ['id', 'user_id', 'amr', 'auth_time', 'setup_only', 'device_id', 'created_at', 'last_used_at', 'expires_at', 'revoked_at'], [oldSessionId, userId, 'pwd mfa', created, 0, null, created, created, HISTORY_EXPIRES, null])
    await writer.add('auth_kit_refresh_token', refreshCols, [randomUUID(), oldSessionId, userId, keyring.hash(randomBytes(32).toString('base64url')), 'pwd mfa', HISTORY_EXPIRES, null, created])
    await writer.add('auth_kit_refresh_token', refreshCols, [randomUUID(), sessionId, userId, keyring.hash(seededToken('r', i)), 'pwd mfa', FAR_FUTURE, null, created])
  }
  for (const table of ['auth_kit_login_attempt', 'auth_kit_refresh_token', 'auth_kit_session']) await writer.exec(`DELETE FROM ${table} WHERE expires_at = ${HISTORY_EXPIRES}`)
  await writer.finish()
}

/** The baseline's own small schema (bench/baseline-store.ts), same counts of the same things. */
export async function seedBaseline (path: string, plan: SeedPlan): Promise<void> {
  const { default: SQLite } = await import('better-sqlite3')
  const setup = new SQLite(path)
  setup.exec(BASELINE_SCHEMA)
  setup.close()
  const writer = await sqliteWriter(path)
  const keys = baselineKeys(SECRET)
  const passwordHash = await slowHash(PASSWORD, PASSWORD_COST)
  const codeHashes = await Promise.all(BACKUP_CODES.map((code) => slowHash(code, BACKUP_CODE_COST)))
  const created = Date.now() - 86_400_000
  const sha = (value: string): string => createHash('sha256').update(value).digest('base64url')

  for (let i = 0; i < plan.users; i++) {
    const userId = randomUUID()
    const methodId = randomUUID()
    const sessionId = randomUUID()
    const name = username(i)
    await writer.add('bench_user', ['id', 'username', 'username_key', 'email', 'email_key', 'password_hash'], [userId, name, name, `${name}@bench.test`, `${name}@bench.test`, passwordHash])
    await writer.add('bench_method', ['id', 'user_id', 'name', 'secret', 'is_active', 'is_primary'], [methodId, userId, 'app', sealBaselineSecret(keys, TOTP_SECRET_BYTES, userId), 1, 1])
    for (let k = 0; k < plan.attemptsPerUser; k++) {
      await writer.add('bench_attempt', ['token_hash', 'user_id', 'method', 'expires_at', 'created_at'], [sha(seededToken('v', i, k)), userId, 'app', FAR_FUTURE, created])
    }
    await writer.add('bench_attempt', ['token_hash', 'user_id', 'method', 'expires_at', 'created_at'], [sha(randomBytes(32).toString('base64url')), userId, 'app', HISTORY_EXPIRES, created])
    await writer.add('bench_attempt', ['token_hash', 'user_id', 'method', 'expires_at', 'created_at'], [sha(seededToken('b', i)), userId, 'app', FAR_FUTURE, created])
    for (let c = 0; c < plan.codesPerUser; c++) {
      await writer.add('bench_backup_code', ['id', 'method_id', 'user_id', 'lookup', 'code_hash'], [randomUUID(), methodId, userId, sha(`${userId}:${BACKUP_CODES[c]}`).slice(0, 12), codeHashes[c]])
    }
    await writer.add('bench_session', ['id', 'user_id', 'amr', 'created_at'], [sessionId, userId, 'pwd mfa', created])
    const oldSessionId = randomUUID()
    await writer.add('bench_session', ['id', 'user_id', 'amr', 'created_at', 'revoked_at'], [oldSessionId, userId, 'pwd mfa', created, HISTORY_EXPIRES])
    await writer.add('bench_refresh', ['token_hash', 'session_id', 'user_id', 'amr', 'expires_at'], [sha(randomBytes(32).toString('base64url')), oldSessionId, userId, 'pwd mfa', HISTORY_EXPIRES])
    await writer.add('bench_refresh', ['token_hash', 'session_id', 'user_id', 'amr', 'expires_at'], [sha(seededToken('r', i)), sessionId, userId, 'pwd mfa', FAR_FUTURE])
  }
  await writer.exec(`DELETE FROM bench_attempt WHERE expires_at = ${HISTORY_EXPIRES}`)
  await writer.exec(`DELETE FROM bench_refresh WHERE expires_at = ${HISTORY_EXPIRES}`)
  await writer.exec(`DELETE FROM bench_session WHERE revoked_at = ${HISTORY_EXPIRES}`)
  await writer.finish()
}

if (process.argv[1]?.endsWith('seed.js') || process.argv[1]?.endsWith('seed.ts')) {
  const [kind, target, users, attempts, codes] = process.argv.slice(2)
  const plan: SeedPlan = { users: Number(users), attemptsPerUser: Number(attempts), codesPerUser: Number(codes) }
  const started = Date.now()
  if (kind === 'plugin') await seedPlugin(target, plan)
  else if (kind === 'baseline') await seedBaseline(target, plan)
  else throw new Error(`unknown seed kind ${kind}`)
  process.stdout.write(`seeded ${kind} ${target.replace(/^.*\//, '')}: ${plan.users} users in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
}

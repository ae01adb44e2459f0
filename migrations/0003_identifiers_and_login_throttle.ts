import { sql, type Kysely } from 'kysely'

// Frozen once released: a schema change is a new file beside this one.
// Rule 11: one table owns every username and email key, so one primary key
// decides, under concurrent registrations, which account an identifier is.
// Rule 13: wrong passwords counted in the database, so every process agrees.
// Written so that a run cut short (MySQL DDL commits as it goes) can run again.

const KEY_LENGTH = 320
const BACKFILL_BATCH = 200

/** MySQL's compiler quotes with backticks: public API, and right for a host's own Kysely copy too. */
function isMysql (db: Kysely<any>): boolean {
  return db.selectFrom('auth_kit_user').selectAll().compile().sql.includes('`')
}

/** The key the plugin compared identifiers by when this migration was written (NFKC, trimmed, lower case). */
function identifierKey (value: string): string {
  return value.normalize('NFKC').trim().toLowerCase().normalize('NFKC')
}

async function createIndex (db: Kysely<any>, mysql: boolean, name: string, table: string, column: string): Promise<void> {
  if (!mysql) {
    await db.schema.createIndex(name).ifNotExists().on(table).column(column).execute()
    return
  }
  // MySQL 8 has no CREATE INDEX IF NOT EXISTS.
  try {
    await db.schema.createIndex(name).on(table).column(column).execute()
  } catch (err) {
    if ((err as { errno?: number }).errno !== 1061) throw err // ER_DUP_KEYNAME: a earlier run made it
  }
}

export async function up (db: Kysely<any>): Promise<void> {
  const mysql = isMysql(db)
  // Keys compare byte for byte on MySQL too: its default collations fold accents and case.
  const binaryText = (length: number) => mysql ? sql.raw(`varchar(${length}) character set utf8mb4 collate utf8mb4_bin`) : sql.raw(`varchar(${length})`)
  const utf8mb4 = sql`default character set utf8mb4 collate utf8mb4_bin`

  let identifiers = db.schema.createTable('auth_kit_user_identifier').ifNotExists()
    .addColumn('identifier_key', binaryText(KEY_LENGTH), (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('kind', 'varchar(16)', (c) => c.notNull())
  if (mysql) identifiers = identifiers.modifyEnd(utf8mb4)
  await identifiers.execute()
  await createIndex(db, mysql, 'auth_kit_user_identifier_user', 'auth_kit_user_identifier', 'user_id')

  // The user table's own key columns stay unique; on MySQL they must not fold
  // what the identifier table keeps apart (`ádmin` and `admin`), and emoji must fit.
  if (mysql) await sql`alter table auth_kit_user convert to character set utf8mb4 collate utf8mb4_bin`.execute(db)

  // Existing accounts, oldest first: where two already share a key (a race of
  // the old code), the older account keeps it.
  const taken = new Set((await db.selectFrom('auth_kit_user_identifier').select('identifier_key').execute()).map((r) => String(r.identifier_key)))
  const users = await db.selectFrom('auth_kit_user').select(['id', 'username', 'email']).orderBy('created_at').orderBy('id').execute()
  let batch: Array<{ identifier_key: string, user_id: string, kind: string }> = []
  for (const user of users) {
    for (const [kind, value] of [['username', user.username], ['email', user.email]] as const) {
      if (typeof value !== 'string' || value.trim() === '') continue
      const key = identifierKey(value)
      if (key.length > KEY_LENGTH || taken.has(key)) continue
      taken.add(key)
      batch.push({ identifier_key: key, user_id: String(user.id), kind })
    }
    if (batch.length >= BACKFILL_BATCH) {
      await db.insertInto('auth_kit_user_identifier').values(batch).execute()
      batch = []
    }
  }
  if (batch.length > 0) await db.insertInto('auth_kit_user_identifier').values(batch).execute()

  let failures = db.schema.createTable('auth_kit_login_failure').ifNotExists()
    .addColumn('throttle_key', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('scope', 'varchar(16)', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
  if (mysql) failures = failures.modifyEnd(utf8mb4)
  await failures.execute()
  // Expired windows are purged as new failures are written.
  await createIndex(db, mysql, 'auth_kit_login_failure_expires', 'auth_kit_login_failure', 'expires_at')
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('auth_kit_login_failure').ifExists().execute()
  await db.schema.dropTable('auth_kit_user_identifier').ifExists().execute()
}

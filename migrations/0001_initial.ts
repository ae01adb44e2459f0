import type { Kysely } from 'kysely'
import { createIndexOnce } from './once.js'

// Frozen once released: a schema change is a new file beside this one.
// Portable DDL only: varchar keys (MySQL cannot index unbounded text), BIGINT
// milliseconds for times, INTEGER 0/1 for flags.
// Re-runnable: MySQL and MariaDB do not roll DDL back, so a process killed
// half-way through this migration leaves some tables behind, unrecorded; the
// next start runs it again and creates only what is missing ("if not exists"),
// the same tables, columns and indexes as before.

export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('auth_kit_user').ifNotExists()
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('username', 'varchar(255)', (c) => c.notNull())
    .addColumn('username_key', 'varchar(255)', (c) => c.notNull().unique())
    .addColumn('email', 'varchar(320)')
    .addColumn('email_key', 'varchar(320)', (c) => c.unique())
    .addColumn('password_hash', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()

  await db.schema.createTable('auth_kit_mfa_method').ifNotExists()
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('name', 'varchar(64)', (c) => c.notNull())
    .addColumn('secret', 'varchar(512)')
    .addColumn('is_active', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('is_primary', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_totp_step', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('auth_kit_mfa_method_user_name', ['user_id', 'name'])
    .execute()

  await db.schema.createTable('auth_kit_backup_code').ifNotExists()
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('method_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('lookup', 'varchar(128)', (c) => c.notNull())
    .addColumn('code_hash', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await createIndexOnce(db, 'auth_kit_backup_code_lookup', 'auth_kit_backup_code', ['user_id', 'lookup'])
  await createIndexOnce(db, 'auth_kit_backup_code_method', 'auth_kit_backup_code', ['method_id'])

  await db.schema.createTable('auth_kit_login_attempt').ifNotExists()
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('token_hash', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('method', 'varchar(64)', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await createIndexOnce(db, 'auth_kit_login_attempt_user', 'auth_kit_login_attempt', ['user_id'])

  await db.schema.createTable('auth_kit_sent_code').ifNotExists()
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('method', 'varchar(64)', (c) => c.notNull())
    .addColumn('code_hash', 'varchar(128)')
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('sent_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('auth_kit_sent_code_user_method', ['user_id', 'method'])
    .execute()

  await db.schema.createTable('auth_kit_user_lock').ifNotExists()
    .addColumn('user_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lock_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute()

  await db.schema.createTable('auth_kit_refresh_token').ifNotExists()
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('family_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('token_hash', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('amr', 'varchar(64)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await createIndexOnce(db, 'auth_kit_refresh_token_family', 'auth_kit_refresh_token', ['family_id'])
}

export async function down (db: Kysely<any>): Promise<void> {
  for (const table of ['auth_kit_refresh_token', 'auth_kit_user_lock', 'auth_kit_sent_code', 'auth_kit_login_attempt', 'auth_kit_backup_code', 'auth_kit_mfa_method', 'auth_kit_user']) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}

import type { Kysely } from 'kysely'

// Frozen once released: a schema change is a new file beside this one.
// Portable DDL only: varchar keys (MySQL cannot index unbounded text), BIGINT
// milliseconds for times, INTEGER 0/1 for flags.

export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('auth_kit_user')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('username', 'varchar(255)', (c) => c.notNull())
    .addColumn('username_key', 'varchar(255)', (c) => c.notNull().unique())
    .addColumn('email', 'varchar(320)')
    .addColumn('email_key', 'varchar(320)', (c) => c.unique())
    .addColumn('password_hash', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()

  await db.schema.createTable('auth_kit_mfa_method')
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

  await db.schema.createTable('auth_kit_backup_code')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('method_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('lookup', 'varchar(128)', (c) => c.notNull())
    .addColumn('code_hash', 'varchar(255)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('auth_kit_backup_code_lookup').on('auth_kit_backup_code').columns(['user_id', 'lookup']).execute()
  await db.schema.createIndex('auth_kit_backup_code_method').on('auth_kit_backup_code').column('method_id').execute()

  await db.schema.createTable('auth_kit_login_attempt')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('token_hash', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('method', 'varchar(64)', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('used_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('auth_kit_login_attempt_user').on('auth_kit_login_attempt').column('user_id').execute()

  await db.schema.createTable('auth_kit_sent_code')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('method', 'varchar(64)', (c) => c.notNull())
    .addColumn('code_hash', 'varchar(128)')
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('sent_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('auth_kit_sent_code_user_method', ['user_id', 'method'])
    .execute()

  await db.schema.createTable('auth_kit_user_lock')
    .addColumn('user_id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lock_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute()

  await db.schema.createTable('auth_kit_refresh_token')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('family_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('token_hash', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('amr', 'varchar(64)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('auth_kit_refresh_token_family').on('auth_kit_refresh_token').column('family_id').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  for (const table of ['auth_kit_refresh_token', 'auth_kit_user_lock', 'auth_kit_sent_code', 'auth_kit_login_attempt', 'auth_kit_backup_code', 'auth_kit_mfa_method', 'auth_kit_user']) {
    await db.schema.dropTable(table).ifExists().execute()
  }
}

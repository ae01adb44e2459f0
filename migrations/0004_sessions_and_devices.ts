import { sql, type Kysely } from 'kysely'

// Sessions (one per refresh-token chain, named by the access token's `sid`),
// trusted devices, and the delivery lease of a sent code. Frozen once released.

export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('auth_kit_session')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('amr', 'varchar(64)', (c) => c.notNull())
    // Milliseconds: when the second factor (or, for a one-step login, the password) was last checked.
    .addColumn('auth_time', 'bigint', (c) => c.notNull())
    .addColumn('setup_only', 'integer', (c) => c.notNull().defaultTo(0))
    // The trusted device the session was started from or remembered in, if any.
    .addColumn('device_id', 'varchar(64)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .execute()
  await db.schema.createIndex('auth_kit_session_user').on('auth_kit_session').column('user_id').execute()

  // Chains alive before sessions existed become sessions, so no one is logged out by the upgrade.
  await db.insertInto('auth_kit_session')
    .columns(['id', 'user_id', 'amr', 'auth_time', 'setup_only', 'created_at', 'last_used_at', 'expires_at'])
    .expression(
      db.selectFrom('auth_kit_refresh_token')
        .select([
          'family_id',
          (eb) => eb.fn.min('user_id').as('user_id'),
          (eb) => eb.fn.min('amr').as('amr'),
          (eb) => eb.fn.min('created_at').as('auth_time'),
          sql<number>`0`.as('setup_only'),
          (eb) => eb.fn.min('created_at').as('created_at'),
          (eb) => eb.fn.max('created_at').as('last_used_at'),
          (eb) => eb.fn.max('expires_at').as('expires_at'),
        ])
        .where('revoked_at', 'is', null)
        .groupBy('family_id'),
    )
    .execute()

  await db.schema.createTable('auth_kit_trusted_device')
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('token_hash', 'varchar(128)', (c) => c.notNull().unique())
    .addColumn('label', 'varchar(100)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('auth_kit_trusted_device_user').on('auth_kit_trusted_device').column('user_id').execute()

  // A send claimed but not yet handed to the mail server: until this time
  // (ms) it holds the cooldown; after it, a crashed sender's claim is void.
  await db.schema.alterTable('auth_kit_sent_code').addColumn('pending_until', 'bigint').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('auth_kit_sent_code').dropColumn('pending_until').execute()
  await db.schema.dropTable('auth_kit_trusted_device').ifExists().execute()
  await db.schema.dropTable('auth_kit_session').ifExists().execute()
}

import type { Kysely } from 'kysely'

// Expired refresh tokens are cleared per user when a new one is issued.
export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('auth_kit_refresh_token_user').on('auth_kit_refresh_token').column('user_id').execute()
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('auth_kit_refresh_token_user').on('auth_kit_refresh_token').execute()
}

import type { Kysely } from 'kysely'
import { createIndexOnce } from './once.js'

// Expired refresh tokens are cleared per user when a new one is issued.
// Re-runnable after a crash (see 0001): the index is created only if missing.
export async function up (db: Kysely<any>): Promise<void> {
  await createIndexOnce(db, 'auth_kit_refresh_token_user', 'auth_kit_refresh_token', ['user_id'])
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('auth_kit_refresh_token_user').on('auth_kit_refresh_token').execute()
}

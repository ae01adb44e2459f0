import type { Kysely } from 'kysely'
import { createIndexOnce } from './once.js'

// Frozen once released: a schema change is a new file beside this one.
// Challenge–response methods (passkeys, SPEC section 10): the challenges they
// issue, shared by every process through the database, and the public part of
// each registered credential. Nothing here is a secret: a challenge is stored
// as a keyed hash all the same, so a copy of the table answers no challenge.
// Re-runnable after a crash (see 0001): tables and indexes only if missing.

export async function up (db: Kysely<any>): Promise<void> {
  await db.schema.createTable('auth_kit_challenge').ifNotExists()
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('method_id', 'varchar(64)', (c) => c.notNull())
    // What the challenge is for: "setup", "method", or "login:<attempt id>".
    .addColumn('scope', 'varchar(128)', (c) => c.notNull())
    .addColumn('challenge_hash', 'varchar(128)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    // The latest challenge of a scope replaces the one before.
    .addUniqueConstraint('auth_kit_challenge_method_scope', ['method_id', 'scope'])
    .execute()
  await createIndexOnce(db, 'auth_kit_challenge_user', 'auth_kit_challenge', ['user_id'])

  await db.schema.createTable('auth_kit_credential').ifNotExists()
    .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
    // One credential per method of a user.
    .addColumn('method_id', 'varchar(64)', (c) => c.notNull().unique())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
    // SHA-256 of the credential id (base64url): unique, so one credential is
    // never registered to two users; the id itself may be too long to index.
    .addColumn('credential_key', 'varchar(64)', (c) => c.notNull().unique())
    // WebAuthn credential ids are at most 1023 bytes: 1364 base64url characters.
    .addColumn('credential_id', 'varchar(1400)', (c) => c.notNull())
    // The COSE public key, base64url.
    .addColumn('public_key', 'varchar(1400)', (c) => c.notNull())
    .addColumn('sign_count', 'bigint', (c) => c.notNull())
    .addColumn('transports', 'varchar(255)')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_used_at', 'bigint')
    .execute()
  await createIndexOnce(db, 'auth_kit_credential_user', 'auth_kit_credential', ['user_id'])
}

export async function down (db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('auth_kit_credential').ifExists().execute()
  await db.schema.dropTable('auth_kit_challenge').ifExists().execute()
}

import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/types.js'
import { isUniqueViolation } from './db-errors.js'
import { affected, toNumber } from './normalize.js'

/** The public part of a method's credential: a passkey's id, COSE public key and signature counter. */
export interface CredentialRow {
  id: string
  methodId: string
  userId: string
  /** SHA-256 (hex) of `credentialId`: unique over every user. */
  credentialKey: string
  /** base64url. */
  credentialId: string
  /** base64url COSE key. */
  publicKey: string
  signCount: number
  transports: string[]
  /** Milliseconds. */
  createdAt: number
}

export class CredentialRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async findByMethod (methodId: string): Promise<CredentialRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_credential').selectAll().where('method_id', '=', methodId).executeTakeFirst()
    if (row === undefined) return undefined
    return {
      id: row.id,
      methodId: row.method_id,
      userId: row.user_id,
      credentialKey: row.credential_key,
      credentialId: row.credential_id,
      publicKey: row.public_key,
      signCount: toNumber(row.sign_count),
      transports: row.transports === null || row.transports === '' ? [] : row.transports.split(','),
      createdAt: toNumber(row.created_at),
    }
  }

  /** The method the credential with this key is registered to, if any. */
  async methodOfKey (credentialKey: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('auth_kit_credential').select('method_id').where('credential_key', '=', credentialKey).executeTakeFirst()
    return row?.method_id
  }

  private async insert (row: CredentialRow): Promise<void> {
    await this.db.insertInto('auth_kit_credential').values({
      id: row.id,
      method_id: row.methodId,
      user_id: row.userId,
      credential_key: row.credentialKey,
      credential_id: row.credentialId,
      public_key: row.publicKey,
      sign_count: row.signCount,
      transports: row.transports.length === 0 ? null : row.transports.join(','),
      created_at: row.createdAt,
      last_used_at: null,
    }).execute()
  }

  /**
   * Inserts the row unless another method holds its `credential_key` (a
   * registration of the same credential committed by another process since
   * the caller looked): false then, and nothing is stored. Inside a
   * transaction the insert runs under a savepoint, because a refused
   * statement would otherwise end the whole transaction on PostgreSQL.
   */
  async insertUnlessTaken (row: CredentialRow): Promise<boolean> {
    if (!this.db.isTransaction) {
      try {
        await this.insert(row)
        return true
      } catch (err) {
        if (isUniqueViolation(err)) return false
        throw err
      }
    }
    await sql`savepoint auth_kit_credential_insert`.execute(this.db)
    try {
      await this.insert(row)
    } catch (err) {
      await sql`rollback to savepoint auth_kit_credential_insert`.execute(this.db)
      if (isUniqueViolation(err)) return false
      throw err
    }
    await sql`release savepoint auth_kit_credential_insert`.execute(this.db)
    return true
  }

  /** Records a use: the new signature counter, only if it still holds what the caller checked against. */
  async recordUse (methodId: string, previousCount: number, signCount: number, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_credential').set({ sign_count: signCount, last_used_at: now })
      .where('method_id', '=', methodId).where('sign_count', '=', previousCount).executeTakeFirst()
    return affected(result) === 1
  }

  async deleteForMethod (methodId: string): Promise<void> {
    await this.db.deleteFrom('auth_kit_credential').where('method_id', '=', methodId).execute()
  }
}

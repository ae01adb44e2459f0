import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { affected, toNullableNumber, toNumber } from './normalize.js'

/** The one row per user and method: the latest code sent and when. */
export interface SentCodeRow {
  id: string
  userId: string
  method: string
  codeHash: string | null
  expiresAt: number
  sentAt: number
  /** Milliseconds: a send claimed and not yet delivered holds the cooldown until then. */
  pendingUntil: number | null
}

export class SentCodeRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async find (userId: string, method: string): Promise<SentCodeRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_sent_code').selectAll()
      .where('user_id', '=', userId).where('method', '=', method).executeTakeFirst()
    if (row === undefined) return undefined
    return { id: row.id, userId: row.user_id, method: row.method, codeHash: row.code_hash, expiresAt: toNumber(row.expires_at), sentAt: toNumber(row.sent_at), pendingUntil: toNullableNumber(row.pending_until) }
  }

  /** Creates the row; false when it exists already (a racing sender made it). */
  async tryInsert (row: SentCodeRow): Promise<boolean> {
    try {
      await this.db.insertInto('auth_kit_sent_code').values({
        id: row.id, user_id: row.userId, method: row.method, code_hash: row.codeHash, expires_at: row.expiresAt, sent_at: row.sentAt, pending_until: row.pendingUntil,
      }).execute()
      return true
    } catch {
      return false
    }
  }

  /** Moves `sent_at` forward only if it still holds what the caller read: one sender wins. */
  async claimSend (id: string, previousSentAt: number, now: number, pendingUntil: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_sent_code').set({ sent_at: now, pending_until: pendingUntil })
      .where('id', '=', id).where('sent_at', '=', previousSentAt).executeTakeFirst()
    return affected(result) === 1
  }

  async store (id: string, codeHash: string, expiresAt: number): Promise<void> {
    await this.db.updateTable('auth_kit_sent_code').set({ code_hash: codeHash, expires_at: expiresAt }).where('id', '=', id).execute()
  }

  async restore (row: SentCodeRow): Promise<void> {
    await this.db.updateTable('auth_kit_sent_code')
      .set({ code_hash: row.codeHash, expires_at: row.expiresAt, sent_at: row.sentAt, pending_until: row.pendingUntil }).where('id', '=', row.id).execute()
  }

  /** The send claimed at `sentAt` reached the mail server: the cooldown now runs from it. */
  async delivered (id: string, sentAt: number): Promise<void> {
    await this.db.updateTable('auth_kit_sent_code').set({ pending_until: null }).where('id', '=', id).where('sent_at', '=', sentAt).execute()
  }

  async remove (id: string): Promise<void> {
    await this.db.deleteFrom('auth_kit_sent_code').where('id', '=', id).execute()
  }

  /** Uses the code up; true for exactly one caller. */
  async consume (id: string, codeHash: string, now: number): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_sent_code').set({ code_hash: null })
      .where('id', '=', id).where('code_hash', '=', codeHash).where('expires_at', '>', now).executeTakeFirst()
    return affected(result) === 1
  }

  /** The code stops working; when it was sent is kept, so the cooldown outlives the method. */
  async invalidate (userId: string, method: string): Promise<void> {
    await this.db.updateTable('auth_kit_sent_code').set({ code_hash: null })
      .where('user_id', '=', userId).where('method', '=', method).execute()
  }
}

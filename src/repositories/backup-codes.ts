import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { prepare } from '../db/prepared.js'

export interface BackupCodeRow {
  id: string
  methodId: string
  lookup: string
  codeHash: string
}

const candidatesOf = prepare((db, methodIds: string[], lookups: string[]) => db.selectFrom('auth_kit_backup_code').select(['id', 'method_id', 'lookup', 'code_hash'])
  .where('method_id', 'in', methodIds).where('lookup', 'in', lookups).orderBy('id'))
const deleteRow = prepare((db, id: string) => db.deleteFrom('auth_kit_backup_code').where('id', '=', id))

export class BackupCodeRepository {
  constructor (private readonly db: Kysely<Database>) {}

  /** Drops the method's codes and stores new ones. Run inside a transaction. */
  async replaceForMethod (methodId: string, userId: string, codes: Array<{ id: string, lookup: string, codeHash: string }>, now: number): Promise<void> {
    await this.db.deleteFrom('auth_kit_backup_code').where('method_id', '=', methodId).execute()
    if (codes.length === 0) return
    await this.db.insertInto('auth_kit_backup_code').values(codes.map((c) => ({
      id: c.id, method_id: methodId, user_id: userId, lookup: c.lookup, code_hash: c.codeHash, created_at: now,
    }))).execute()
  }

  async deleteForMethod (methodId: string): Promise<void> {
    await this.db.deleteFrom('auth_kit_backup_code').where('method_id', '=', methodId).execute()
  }

  /** Codes of these methods whose lookup tag is one of `lookups`. */
  async candidates (methodIds: string[], lookups: string[]): Promise<BackupCodeRow[]> {
    if (methodIds.length === 0 || lookups.length === 0) return []
    const rows = await candidatesOf.all(this.db, methodIds, lookups)
    return rows.map((r) => ({ id: r.id, methodId: r.method_id, lookup: r.lookup, codeHash: r.code_hash }))
  }

  /** Every lookup tag the user holds, to keep tags unique per user. */
  async lookupsOfUser (userId: string): Promise<Set<string>> {
    const rows = await this.db.selectFrom('auth_kit_backup_code').select('lookup').where('user_id', '=', userId).execute()
    return new Set(rows.map((r) => r.lookup))
  }

  /** Deletes one code; true for exactly one of any number of racing callers. */
  async consume (id: string): Promise<boolean> {
    return (await deleteRow.run(this.db, id)) === 1
  }

  /** Puts a consumed code back (its request failed after using it up). */
  async restore (code: BackupCodeRow, userId: string, now: number): Promise<void> {
    await this.db.insertInto('auth_kit_backup_code').values({
      id: code.id, method_id: code.methodId, user_id: userId, lookup: code.lookup, code_hash: code.codeHash, created_at: now,
    }).execute()
  }
}

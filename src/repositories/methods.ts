import type { Kysely, Selectable } from 'kysely'
import type { Database, MfaMethodTable } from '../db/types.js'
import { affected, toBool, toNullableNumber, toNumber } from './normalize.js'
import { prepare } from '../db/prepared.js'

export interface MethodRow {
  id: string
  userId: string
  name: string
  /** Sealed (encrypted) TOTP secret, or null for methods that send codes. */
  secret: string | null
  isActive: boolean
  isPrimary: boolean
  lastTotpStep: number | null
  createdAt: number
}

export function toMethod (row: Selectable<MfaMethodTable>): MethodRow {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    secret: row.secret,
    isActive: toBool(row.is_active),
    isPrimary: toBool(row.is_primary),
    lastTotpStep: toNullableNumber(row.last_totp_step),
    createdAt: toNumber(row.created_at),
  }
}

/** The user's methods, oldest first. */
export const ofUser = prepare((db, userId: string) => db.selectFrom('auth_kit_mfa_method').selectAll()
  .where('user_id', '=', userId).orderBy('created_at').orderBy('id'))
const ofUserWithCodeCounts = prepare((db, userId: string) => db.selectFrom('auth_kit_mfa_method as m').selectAll('m')
  .select((eb) => eb.selectFrom('auth_kit_backup_code as b').select(eb.fn.countAll().as('n')).whereRef('b.method_id', '=', 'm.id').as('backup_codes'))
  .where('m.user_id', '=', userId).orderBy('m.created_at').orderBy('m.id'))
const byName = prepare((db, userId: string, name: string) => db.selectFrom('auth_kit_mfa_method').selectAll()
  .where('user_id', '=', userId).where('name', '=', name))
const advanceStep = prepare((db, id: string, step: number) => db.updateTable('auth_kit_mfa_method')
  .set({ last_totp_step: step })
  .where('id', '=', id)
  .where((eb) => eb.or([eb('last_totp_step', 'is', null), eb('last_totp_step', '<', step)])))

export class MethodRepository {
  constructor (private readonly db: Kysely<Database>) {}

  /** The user's methods, oldest first (the order primary promotion follows). */
  async listByUser (userId: string): Promise<MethodRow[]> {
    return (await ofUser.all(this.db, userId)).map(toMethod)
  }

  /** `listByUser`, each with how many backup codes it has left, in one read (`GET /mfa/`). */
  async listWithBackupCodeCounts (userId: string): Promise<Array<MethodRow & { backupCodes: number }>> {
    const rows = await ofUserWithCodeCounts.all(this.db, userId)
    return rows.map(({ backup_codes: count, ...row }) => ({ ...toMethod(row), backupCodes: Number(count ?? 0) }))
  }

  /** How many users have an active method of each name. */
  async activeUsersByName (): Promise<Map<string, number>> {
    const rows = await this.db.selectFrom('auth_kit_mfa_method')
      .select(['name', (eb) => eb.fn.countAll().as('n')])
      .where('is_active', '=', 1).groupBy('name').execute()
    return new Map(rows.map((r) => [r.name, Number(r.n)]))
  }

  async find (userId: string, name: string): Promise<MethodRow | undefined> {
    const row = await byName.first(this.db, userId, name)
    return row === undefined ? undefined : toMethod(row)
  }

  async insert (row: MethodRow): Promise<void> {
    await this.db.insertInto('auth_kit_mfa_method').values({
      id: row.id,
      user_id: row.userId,
      name: row.name,
      secret: row.secret,
      is_active: row.isActive ? 1 : 0,
      is_primary: row.isPrimary ? 1 : 0,
      last_totp_step: row.lastTotpStep,
      created_at: row.createdAt,
    }).execute()
  }

  /** Inactive → active; false when another request got there first. */
  async activate (id: string, primary: boolean): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_mfa_method')
      .set({ is_active: 1, is_primary: primary ? 1 : 0 })
      .where('id', '=', id).where('is_active', '=', 0).executeTakeFirst()
    return affected(result) === 1
  }

  async deactivate (id: string): Promise<boolean> {
    const result = await this.db.updateTable('auth_kit_mfa_method')
      .set({ is_active: 0, is_primary: 0 })
      .where('id', '=', id).where('is_active', '=', 1).where('is_primary', '=', 0).executeTakeFirst()
    return affected(result) === 1
  }

  /** Makes `id` the user's only primary. Run inside a transaction. */
  async setPrimary (userId: string, id: string): Promise<void> {
    await this.db.updateTable('auth_kit_mfa_method').set({ is_primary: 0 })
      .where('user_id', '=', userId).where('id', '!=', id).execute()
    await this.db.updateTable('auth_kit_mfa_method').set({ is_primary: 1 })
      .where('id', '=', id).where('is_active', '=', 1).execute()
  }

  async delete (id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('auth_kit_mfa_method').where('id', '=', id).executeTakeFirst()
    return affected(result) === 1
  }

  /** Replaces the sealed secret, only if it still holds `previous` (key rotation). */
  async resealSecret (id: string, previous: string, sealed: string): Promise<void> {
    await this.db.updateTable('auth_kit_mfa_method').set({ secret: sealed })
      .where('id', '=', id).where('secret', '=', previous).execute()
  }

  /**
   * Records an accepted TOTP step, only if it is later than every step
   * accepted before: the compare-and-set that makes a step single use
   * across requests and processes.
   */
  async advanceTotpStep (id: string, step: number): Promise<boolean> {
    return (await advanceStep.run(this.db, id, step)) === 1
  }
}

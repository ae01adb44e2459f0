import type { Kysely, Selectable } from 'kysely'
import type { Database, MfaMethodTable } from '../db/types.js'
import { affected, toBool, toNullableNumber, toNumber } from './normalize.js'

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

function toMethod (row: Selectable<MfaMethodTable>): MethodRow {
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

export class MethodRepository {
  constructor (private readonly db: Kysely<Database>) {}

  /** The user's methods, oldest first (the order primary promotion follows). */
  async listByUser (userId: string): Promise<MethodRow[]> {
    const rows = await this.db.selectFrom('auth_kit_mfa_method').selectAll()
      .where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute()
    return rows.map(toMethod)
  }

  /** How many users have an active method of each name. */
  async activeUsersByName (): Promise<Map<string, number>> {
    const rows = await this.db.selectFrom('auth_kit_mfa_method')
      .select(['name', (eb) => eb.fn.countAll().as('n')])
      .where('is_active', '=', 1).groupBy('name').execute()
    return new Map(rows.map((r) => [r.name, Number(r.n)]))
  }

  async find (userId: string, name: string): Promise<MethodRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_mfa_method').selectAll()
      .where('user_id', '=', userId).where('name', '=', name).executeTakeFirst()
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
    const result = await this.db.updateTable('auth_kit_mfa_method')
      .set({ last_totp_step: step })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_totp_step', 'is', null), eb('last_totp_step', '<', step)]))
      .executeTakeFirst()
    return affected(result) === 1
  }
}

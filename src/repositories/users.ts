import type { Kysely, Selectable } from 'kysely'
import type { Database, UserTable } from '../db/types.js'
import { toNumber } from './normalize.js'
import { prepare } from '../db/prepared.js'

export interface UserRow {
  [key: string]: unknown
  id: string
  username: string
  email: string | null
  passwordHash: string
  createdAt: number
}

/** A username or email key of one account; an account whose two keys are equal has one. */
export interface UserIdentifier {
  key: string
  kind: 'username' | 'email'
}

function toUser (row: Selectable<UserTable>): UserRow {
  return { id: row.id, username: row.username, email: row.email, passwordHash: row.password_hash, createdAt: toNumber(row.created_at) }
}

const byId = prepare((db, id: string) => db.selectFrom('auth_kit_user').selectAll().where('id', '=', id))
const byKey = prepare((db, key: string) => db.selectFrom('auth_kit_user_identifier as i')
  .innerJoin('auth_kit_user as u', 'u.id', 'i.user_id')
  .selectAll('u').where('i.identifier_key', '=', key))

export class UserRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async findById (id: string): Promise<UserRow | undefined> {
    const row = await byId.first(this.db, id)
    return row === undefined ? undefined : toUser(row)
  }

  /** By username or email key, through the identifier table that owns them. */
  async findByKey (key: string): Promise<UserRow | undefined> {
    const row = await byKey.first(this.db, key)
    return row === undefined ? undefined : toUser(row)
  }

  async keyTaken (keys: string[]): Promise<boolean> {
    const row = await this.db.selectFrom('auth_kit_user_identifier').select('user_id')
      .where('identifier_key', 'in', keys).executeTakeFirst()
    return row !== undefined
  }

  /**
   * The user and its identifiers in one transaction: a key another account
   * holds, or takes meanwhile, fails the whole insert with a unique violation.
   * Keys go in sorted, so two registrations wanting each other's keys lock them
   * in one order.
   */
  async insertWithIdentifiers (row: UserTable, identifiers: UserIdentifier[]): Promise<void> {
    const sorted = [...identifiers].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    await this.db.transaction().execute(async (trx) => {
      for (const { key, kind } of sorted) {
        await trx.insertInto('auth_kit_user_identifier').values({ identifier_key: key, user_id: row.id, kind }).execute()
      }
      await trx.insertInto('auth_kit_user').values(row).execute()
    })
  }
}

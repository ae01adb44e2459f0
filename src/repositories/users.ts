import type { Kysely, Selectable } from 'kysely'
import type { Database, UserTable } from '../db/types.js'
import { toNumber } from './normalize.js'

export interface UserRow {
  [key: string]: unknown
  id: string
  username: string
  email: string | null
  passwordHash: string
  createdAt: number
}

function toUser (row: Selectable<UserTable>): UserRow {
  return { id: row.id, username: row.username, email: row.email, passwordHash: row.password_hash, createdAt: toNumber(row.created_at) }
}

export class UserRepository {
  constructor (private readonly db: Kysely<Database>) {}

  async findById (id: string): Promise<UserRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_user').selectAll().where('id', '=', id).executeTakeFirst()
    return row === undefined ? undefined : toUser(row)
  }

  /** By username or email, both already folded to their lookup keys. */
  async findByKey (key: string): Promise<UserRow | undefined> {
    const row = await this.db.selectFrom('auth_kit_user').selectAll()
      .where((eb) => eb.or([eb('username_key', '=', key), eb('email_key', '=', key)]))
      .orderBy('created_at').executeTakeFirst()
    return row === undefined ? undefined : toUser(row)
  }

  async keyTaken (usernameKey: string, emailKey: string): Promise<boolean> {
    const row = await this.db.selectFrom('auth_kit_user').select('id')
      .where((eb) => eb.or([
        eb('username_key', 'in', [usernameKey, emailKey]),
        eb('email_key', 'in', [usernameKey, emailKey]),
      ])).executeTakeFirst()
    return row !== undefined
  }

  async insert (row: UserTable): Promise<void> {
    await this.db.insertInto('auth_kit_user').values(row).execute()
  }
}

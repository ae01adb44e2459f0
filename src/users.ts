import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from './db/types.js'
import { UserRepository, type UserRow } from './repositories/users.js'
import { PASSWORD_COST, slowHash, slowVerify } from './crypto.js'
import { AuthKitErrors } from './errors.js'

/** What the plugin needs of a user; a host's store may return richer records. */
export interface AuthKitUser {
  id: string | number
  [key: string]: unknown
}

/** Plugs the host's own user model in (SPEC section 7). */
export interface UserStore<U extends AuthKitUser = AuthKitUser> {
  findByLogin (login: string): Promise<U | null | undefined>
  findById (id: string): Promise<U | null | undefined>
  verifyPassword (user: U, password: string): Promise<boolean>
  toPublic (user: U): Record<string, unknown>
  emailOf (user: U): string | null | undefined
  create? (input: { username: string, email: string, password: string }): Promise<U>
}

export interface BuiltInUser extends AuthKitUser {
  id: string
  username: string
  email: string | null
  passwordHash: string
}

/** Usernames and emails compare without regard to case. */
export function loginKey (value: string): string {
  return value.normalize('NFKC').trim().toLowerCase()
}

/** The `auth_kit_user` table, with scrypt password hashes. */
export class BuiltInUserStore implements UserStore<BuiltInUser> {
  private readonly users: UserRepository
  constructor (db: Kysely<Database>, private readonly now: () => number) {
    this.users = new UserRepository(db)
  }

  async findByLogin (login: string): Promise<BuiltInUser | undefined> {
    return this.users.findByKey(loginKey(login))
  }

  async findById (id: string): Promise<BuiltInUser | undefined> {
    return this.users.findById(id)
  }

  async verifyPassword (user: BuiltInUser, password: string): Promise<boolean> {
    return slowVerify(password, user.passwordHash)
  }

  toPublic (user: BuiltInUser): Record<string, unknown> {
    return { id: String(user.id), username: user.username, email: user.email ?? '' }
  }

  emailOf (user: BuiltInUser): string | null {
    return user.email
  }

  async create (input: { username: string, email: string, password: string }): Promise<BuiltInUser> {
    const usernameKey = loginKey(input.username)
    const emailKey = loginKey(input.email)
    if (await this.users.keyTaken(usernameKey, emailKey)) throw new AuthKitErrors.UsernameTaken()
    const row: UserRow = {
      id: randomUUID(),
      username: input.username.trim(),
      email: input.email.trim(),
      passwordHash: await slowHash(input.password, PASSWORD_COST),
      createdAt: this.now(),
    }
    try {
      await this.users.insert({
        id: row.id, username: row.username, username_key: usernameKey, email: row.email,
        email_key: emailKey, password_hash: row.passwordHash, created_at: row.createdAt,
      })
    } catch {
      // The unique keys caught a registration racing this one.
      throw new AuthKitErrors.UsernameTaken()
    }
    return row
  }
}

/** A hash to check against when the user does not exist, so both cases cost the same. */
let dummyHash: Promise<string> | undefined
export function dummyPasswordHash (): Promise<string> {
  dummyHash ??= slowHash('fastify-auth-kit dummy password', PASSWORD_COST)
  return dummyHash
}

/** Keys a user record may hold a password hash under; never handed to routes or handlers (rule 7). */
const PASSWORD_KEYS = /^(password|passwd|pass_?hash|password_?hash|hashed_?password|password_?digest|encrypted_?password)$/i

/**
 * The record without any password-hash field (rule 7), for `request.user`
 * and a handler's `this.user`. The record itself when it holds none.
 */
export function withoutPasswordHash<U extends AuthKitUser> (user: U): U {
  if (!Object.keys(user).some((key) => PASSWORD_KEYS.test(key))) return user
  const copy: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(user)) if (!PASSWORD_KEYS.test(key)) copy[key] = value
  return copy as U
}

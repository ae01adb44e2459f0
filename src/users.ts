import type { Kysely } from 'kysely'
import type { Database } from './db/types.js'
import { UserRepository, type UserIdentifier, type UserRow } from './repositories/users.js'
import { isTransientConflict, isUniqueViolation } from './repositories/db-errors.js'
import { PASSWORD_COST, slowHash, slowVerify, newId } from './crypto.js'
import { AuthKitErrors } from './errors.js'
import type { PublicUser } from '../schemas/common.js'

/** What the plugin needs of a user; a host's store may return richer records. */
export interface AuthKitUser {
  id: string | number
  [key: string]: unknown
}

/**
 * Plugs the host's own user model in (SPEC section 7). Ids are strings to the
 * plugin and are never reused. A throw from any function is logged and
 * answered 500 without its words.
 */
export interface UserStore<U extends AuthKitUser = AuthKitUser> {
  /**
   * The user whose username or email is `login` (as typed at `POST /login/`),
   * or null (or undefined) when there is none. An unknown login should cost
   * about what a known one does (the plugin then checks a dummy scrypt hash).
   */
  findByLogin (login: string): Promise<U | null | undefined>
  /**
   * The user with this id, or null (or undefined) once the user is deleted or
   * disabled: from then on the user's tokens, login attempts and devices stop
   * working, for good (rule 12).
   */
  findById (id: string): Promise<U | null | undefined>
  /** Whether `password` is the user's; false, never a throw, for a wrong one. */
  verifyPassword (user: U, password: string): Promise<boolean>
  /**
   * What the API shows of the user (`user` in login answers and `GET /user/`):
   * plain JSON data holding `id` (a string, or a number written as one), and
   * never a password hash or other secret. The built-in store gives
   * `{id, username, email}`.
   */
  toPublic (user: U): Record<string, unknown>
  /**
   * Where the user's code and notification mails go: one plain mailbox
   * (`local@domain`), or null (or undefined) for none; anything else counts
   * as none (rule 7).
   */
  emailOf (user: U): string | null | undefined
  /**
   * `POST /registration/` (with `registration: true`): stores a new user and
   * returns it; throws `AuthKitErrors.UsernameTaken` (409) for a taken
   * username or email. The built-in store has it.
   */
  create? (input: { username: string, email: string, password: string }): Promise<U>
}

/**
 * The user as the routes show it (the `AuthKitUser` schema): the store's
 * `toPublic`, whose `id` the serializer writes as a string. The one place a
 * store's answer is taken as that shape.
 */
export function publicUser<U extends AuthKitUser> (users: UserStore<U>, user: U): PublicUser {
  return users.toPublic(user) as PublicUser
}

export interface BuiltInUser extends AuthKitUser {
  id: string
  username: string
  email: string | null
  passwordHash: string
}

/**
 * Rule 11: usernames and emails compare by this key (NFKC, trimmed, lower
 * case, NFKC again so the key of a key is itself), never by a collation.
 */
export function loginKey (value: string): string {
  return value.normalize('NFKC').trim().toLowerCase().normalize('NFKC')
}

/** Longest keys the columns hold; NFKC can make a key longer than what was typed. */
const MAX_USERNAME_KEY = 255
const MAX_EMAIL_KEY = 320
/** Tries of a registration the database chose as a deadlock victim. */
const REGISTRATION_TRIES = 4

/** The `auth_kit_user` table, with scrypt password hashes. */
export class BuiltInUserStore implements UserStore<BuiltInUser> {
  private readonly users: UserRepository
  constructor (db: Kysely<Database>, private readonly now: () => number) {
    this.users = new UserRepository(db)
  }

  async findByLogin (login: string): Promise<BuiltInUser | undefined> {
    const key = loginKey(login)
    if (key === '' || key.length > MAX_EMAIL_KEY) return undefined
    return this.users.findByKey(key)
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
    if (usernameKey === '' || usernameKey.length > MAX_USERNAME_KEY) throw new AuthKitErrors.IdentifierTooLong('username', MAX_USERNAME_KEY)
    if (emailKey === '' || emailKey.length > MAX_EMAIL_KEY) throw new AuthKitErrors.IdentifierTooLong('email', MAX_EMAIL_KEY)
    const identifiers: UserIdentifier[] = [{ key: usernameKey, kind: 'username' }]
    if (emailKey !== usernameKey) identifiers.push({ key: emailKey, kind: 'email' })
    // Spares the slow hash for a name that is plainly taken; the insert decides.
    if (await this.users.keyTaken(identifiers.map((i) => i.key))) throw new AuthKitErrors.UsernameTaken()
    const row: UserRow = {
      id: newId(),
      username: input.username.trim(),
      email: input.email.trim(),
      passwordHash: await slowHash(input.password, PASSWORD_COST),
      createdAt: this.now(),
    }
    for (let tries = 1; ; tries++) {
      try {
        await this.users.insertWithIdentifiers({
          id: row.id, username: row.username, username_key: usernameKey, email: row.email,
          email_key: emailKey, password_hash: row.passwordHash, created_at: row.createdAt,
        }, identifiers)
        return row
      } catch (err) {
        // A registration racing this one holds one of the keys.
        if (isUniqueViolation(err)) throw new AuthKitErrors.UsernameTaken()
        if (!isTransientConflict(err) || tries >= REGISTRATION_TRIES) throw err
      }
    }
  }
}

/** A hash to check against when the user does not exist, so both cases cost the same. */
let dummyHash: Promise<string> | undefined
export function dummyPasswordHash (): Promise<string> {
  dummyHash ??= slowHash('fastify-auth-kit dummy password', PASSWORD_COST)
  return dummyHash
}

/** Keys a user record may hold a password hash (or its salt) under; never handed to routes or handlers (rule 7). */
const PASSWORD_KEYS = /^(password|passwd|pwd|pass)([_-]?(hash|digest|salt))?$|^(hashed|encrypted|crypted)[_-]?(password|passwd|pwd)$|^(hash|salt|password[_-]?hash[_-]?salt)$/i
/** How deep nested records (a `credentials` object, say) are searched. */
const SCRUB_DEPTH = 4

function scrub (value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object' || depth > SCRUB_DEPTH) return value
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1))
  if (value instanceof Date || Buffer.isBuffer(value)) return value
  const copy: Record<string, unknown> = {}
  for (const [key, inner] of Object.entries(value)) if (!PASSWORD_KEYS.test(key)) copy[key] = scrub(inner, depth + 1)
  return copy
}

/**
 * The record as plain data without any password-hash field, at any depth
 * (rule 7), for `request.user` and a handler's `this.user`. A record with a
 * `toJSON()` (an ORM model) is taken as what it serializes to, so a hash kept
 * in the model's internals cannot come back when a route returns the user.
 */
export function withoutPasswordHash<U extends AuthKitUser> (user: U): U {
  const record = user as unknown as { toJSON?: () => unknown }
  const data = typeof record.toJSON === 'function' ? record.toJSON() : user
  return scrub(data, 0) as U
}

import { v7 as uuidv7 } from 'uuid'
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, randomInt, scrypt, timingSafeEqual } from 'node:crypto'

/** One secret from the `secret` option, with the keys derived from it. */
export interface KeySet {
  /** Short public name of the key: stored beside ciphertexts, `kid` of JWTs. */
  id: string
  jwt: Buffer
  encryption: Buffer
  hashing: Buffer
}

function derive (secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('fastify-auth-kit'), Buffer.from(purpose), 32))
}

export function deriveKeySet (secret: string): KeySet {
  return {
    id: createHash('sha256').update('fastify-auth-kit:key-id').update(secret).digest('base64url').slice(0, 10),
    jwt: derive(secret, 'jwt-hs256'),
    encryption: derive(secret, 'aes-256-gcm'),
    hashing: derive(secret, 'hmac-sha256'),
  }
}

/**
 * Keys from `secret`, newest first. Encryption, signing and new hashes use the
 * newest; reading tries every key so values made under an older one keep working.
 */
export class Keyring {
  readonly keys: KeySet[]
  constructor (secrets: string[]) {
    this.keys = secrets.map(deriveKeySet)
  }

  get current (): KeySet { return this.keys[0] }

  byId (id: string): KeySet | undefined { return this.keys.find((k) => k.id === id) }

  /** Authenticated encryption; the output names the key and binds `context`. */
  encrypt (plain: string, context: string): string {
    const key = this.current
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key.encryption, iv)
    cipher.setAAD(Buffer.from(context))
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return ['v1', key.id, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
  }

  /** True when `sealed` was made with the newest key (false: re-seal it when convenient). */
  sealedWithCurrent (sealed: string): boolean {
    return sealed.split('.')[1] === this.current.id
  }

  decrypt (sealed: string, context: string): string {
    const [version, keyId, iv, body, tag] = sealed.split('.')
    const key = this.byId(keyId)
    if (version !== 'v1' || key === undefined) throw new Error('fastify-auth-kit: no key for an encrypted value (was a secret removed from the list?)')
    const decipher = createDecipheriv('aes-256-gcm', key.encryption, Buffer.from(iv, 'base64url'))
    decipher.setAAD(Buffer.from(context))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
  }

  /** Keyed hash with the newest key, for storing. */
  hash (value: string): string {
    return hmac(this.current.hashing, value)
  }

  /** The keyed hash under every key, for looking a stored value up. */
  hashes (value: string): string[] {
    return this.keys.map((k) => hmac(k.hashing, value))
  }

  /** Constant-time check of a value against a stored keyed hash, under every key. */
  matches (value: string, stored: string): boolean {
    let found = false
    for (const candidate of this.hashes(value)) found = safeEqual(candidate, stored) || found
    return found
  }
}

function hmac (key: Buffer, value: string): string {
  return createHmac('sha256', key).update(value, 'utf8').digest('base64url')
}

export function safeEqual (a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8')
  const bb = Buffer.from(b, 'utf8')
  // Compare equal lengths so the time does not depend on where they differ.
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab)
    return false
  }
  return timingSafeEqual(ab, bb)
}

/**
 * A new row id: a UUID version 7 (RFC 9562 section 5.7), 48 bits of
 * milliseconds, a 32-bit counter (random at each new millisecond, then one
 * up for each further id of that millisecond in this process) and 42 random
 * bits: ids made in one millisecond differ by one in the counter and in 42
 * random bits only, and an id shows when its row was made. Ids made later
 * sort later, so each new row lands at the end of its primary-key index
 * instead of on a random page of it: on a large table that is one page a
 * write touches instead of one read from disk (bench/README.md,
 * "users_scale"). The creation time it shows is no secret (rows carry
 * `created_at`); nothing relies on an id being unguessable: tokens are
 * separate random values, stored as keyed hashes, and every route that takes
 * an id acts only on the caller's own rows.
 */
export function newId (): string {
  return uuidv7()
}

/** A random token of `bytes` bytes, base64url. */
export function randomToken (bytes = 32): string {
  return randomBytes(bytes).toString('base64url')
}

/** `digits` random decimal digits from the CSPRNG. */
export function randomDigits (digits = 6): string {
  let out = ''
  for (let i = 0; i < digits; i++) out += String(randomInt(10))
  return out
}

export const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

export function randomCrockford (length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += CROCKFORD[randomInt(32)]
  return out
}

/**
 * Crockford base32 as a person types it: case, spaces and dashes ignored,
 * I and L read as 1, O as 0. Anything else outside the alphabet gives null.
 */
export function normalizeCrockford (input: string): string | null {
  const cleaned = input.replace(/[\s-]/g, '').toUpperCase().replace(/[IL]/g, '1').replace(/O/g, '0')
  if (cleaned.length === 0 || cleaned.length > 128) return null
  for (const ch of cleaned) if (!CROCKFORD.includes(ch)) return null
  return cleaned
}

export interface ScryptCost { N: number, r: number, p: number }

/** Passwords: scrypt at a cost worth an attacker's while. */
export const PASSWORD_COST: ScryptCost = { N: 16384, r: 8, p: 1 }
/** Backup codes carry 80 random bits; the slow hash only guards short custom lengths. */
export const BACKUP_CODE_COST: ScryptCost = { N: 4096, r: 8, p: 1 }

function scryptAsync (value: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(value, salt, 32, { N: cost.N, r: cost.r, p: cost.p, maxmem: 256 * cost.N * cost.r }, (err, key) => {
      if (err) reject(err)
      else resolve(key)
    })
  })
}

/** `scrypt$N$r$p$salt$hash`. */
export async function slowHash (value: string, cost: ScryptCost): Promise<string> {
  const salt = randomBytes(16)
  const key = await scryptAsync(value, salt, cost)
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$')
}

export async function slowVerify (value: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$')
  if (kind !== 'scrypt' || salt === undefined || hash === undefined) return false
  const key = await scryptAsync(value, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) })
  return safeEqual(key.toString('base64url'), hash)
}

/**
 * What the loader, the seeders and both servers must agree on: the bench
 * clock, the shared TOTP secret, how a seeded token is named, the password.
 * No server reads anything here that would give it a head start: servers get
 * only the clock and constants any real deployment has.
 */
import { createHash, createHmac } from 'node:crypto'

export const PASSWORD = 'correct horse battery staple'
export const SECRET = 'bench-secret-that-is-at-least-32-characters-long!'
/** Far future (year 2100) for seeded expiries: nothing seeded expires during a run. */
export const FAR_FUTURE = 4_102_444_800_000
/** Ten years: access and refresh tokens made during a run outlive it, even on the fast clock. */
export const LONG_EXPIRY_SECONDS = 10 * 365 * 86400
export const TOTP_PERIOD = 30

/**
 * The bench clock: starts at T0 and runs SPEED times faster than the wall
 * clock, so a small user table still has a fresh TOTP step for every request
 * (each step is accepted once per method). Every server (plugin and baseline)
 * and the loader compute it the same way from the same T0 and SPEED.
 */
export function benchClock (t0: number, speed: number): () => number {
  return () => t0 + (Date.now() - t0) * speed
}

export function clockFromEnv (): () => number {
  const t0 = Number(process.env.BENCH_T0)
  const speed = Number(process.env.BENCH_SPEED)
  if (!Number.isFinite(t0) || !Number.isFinite(speed) || speed <= 0) throw new Error('BENCH_T0 and BENCH_SPEED must be set')
  return benchClock(t0, speed)
}

/** One TOTP secret (20 bytes) for every seeded user; each user's copy is sealed on its own. */
export const TOTP_SECRET_BYTES = createHash('sha1').update('fastify-auth-kit bench totp').digest()
export const TOTP_SECRET_BASE32 = base32(TOTP_SECRET_BYTES)

function base32 (bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

/** RFC 6238 (SHA-1, 6 digits) for one time step. */
export function totpForStep (key: Buffer, step: number): string {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const mac = createHmac('sha1', key).update(counter).digest()
  const offset = mac[mac.length - 1] & 0x0f
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000
  return String(n).padStart(6, '0')
}

export function stepAt (ms: number): number {
  return Math.floor(ms / 1000 / TOTP_PERIOD)
}

/**
 * A seeded token, the same on the seeder's and the loader's side, so none
 * has to be stored or passed around: kind 'v' (login attempt for a TOTP
 * verify), 'b' (attempt for a backup-code verify), 'r' (refresh token).
 */
export function seededToken (kind: 'v' | 'b' | 'r', user: number, k = 0): string {
  return createHmac('sha256', 'fastify-auth-kit bench tokens').update(`${kind}:${user}:${k}`).digest('base64url')
}

/** The backup codes every seeded user holds (each user's rows are its own). */
export const BACKUP_CODES = ['7K2M9QX4PD3T8WNB', 'H5R1VZC6JG0YA2ME', 'Q8D4N7TX3K9BWF5R', 'M2Z6C1PJ8VH4G0YT', 'X9A3E5RQ7N1KD6WB',
  'B4T8Y2GM6PZ0QH3J', 'F1W7K5DN9X2RC8VA', 'T6J0H3QB5M9ZE1YG', 'N3V9R7CA1D5KX4PW', 'G8E2M6TY0B4HJ7QZ']

export function username (i: number): string {
  return `user${i}`
}

/**
 * The hand-written baseline's storage: the smallest schema that keeps the
 * rules the measured routes need (SPEC section 5): attempts single use with a
 * failure count, TOTP secrets sealed at rest, the TOTP replay guard (last
 * accepted step per method), hashed single-use backup codes, a lock per user,
 * sessions that can be revoked, rotating refresh tokens with reuse detection,
 * per-client password-failure counts.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

export const BASELINE_SCHEMA = `
CREATE TABLE IF NOT EXISTS bench_user (
  id TEXT PRIMARY KEY, username TEXT NOT NULL, username_key TEXT NOT NULL UNIQUE,
  email TEXT, email_key TEXT UNIQUE, password_hash TEXT NOT NULL,
  mfa_failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS bench_method (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, name TEXT NOT NULL, secret TEXT,
  is_active INTEGER NOT NULL DEFAULT 0, is_primary INTEGER NOT NULL DEFAULT 0, last_step INTEGER,
  UNIQUE (user_id, name));
CREATE TABLE IF NOT EXISTS bench_backup_code (
  id TEXT PRIMARY KEY, method_id TEXT NOT NULL, user_id TEXT NOT NULL, lookup TEXT NOT NULL, code_hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS bench_backup_code_lookup ON bench_backup_code (user_id, lookup);
CREATE INDEX IF NOT EXISTS bench_backup_code_method ON bench_backup_code (method_id);
CREATE TABLE IF NOT EXISTS bench_attempt (
  token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, method TEXT NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL, used_at INTEGER, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS bench_attempt_user ON bench_attempt (user_id);
CREATE TABLE IF NOT EXISTS bench_session (
  id TEXT PRIMARY KEY, user_id TEXT NOT NULL, amr TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER);
CREATE INDEX IF NOT EXISTS bench_session_user ON bench_session (user_id);
CREATE TABLE IF NOT EXISTS bench_refresh (
  token_hash TEXT PRIMARY KEY, session_id TEXT NOT NULL, user_id TEXT NOT NULL, amr TEXT NOT NULL,
  expires_at INTEGER NOT NULL, used_at INTEGER);
CREATE INDEX IF NOT EXISTS bench_refresh_session ON bench_refresh (session_id);
CREATE TABLE IF NOT EXISTS bench_login_failure (key TEXT PRIMARY KEY, count INTEGER NOT NULL, since INTEGER NOT NULL);
`

export interface BaselineKeys { jwt: Buffer, encryption: Buffer, kid: string }

export function baselineKeys (secret: string): BaselineKeys {
  const derive = (purpose: string): Buffer => Buffer.from(hkdfSync('sha256', secret, 'bench-baseline', purpose, 32))
  return { jwt: derive('jwt'), encryption: derive('aes'), kid: 'baseline' }
}

/** AES-256-GCM, bound to the user id: iv | tag | ciphertext, base64url. */
export function sealBaselineSecret (keys: BaselineKeys, secret: Buffer, userId: string): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keys.encryption, iv)
  cipher.setAAD(Buffer.from(userId))
  const body = Buffer.concat([cipher.update(secret), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')
}

export function openBaselineSecret (keys: BaselineKeys, sealed: string, userId: string): Buffer {
  const raw = Buffer.from(sealed, 'base64url')
  const decipher = createDecipheriv('aes-256-gcm', keys.encryption, raw.subarray(0, 12))
  decipher.setAAD(Buffer.from(userId))
  decipher.setAuthTag(raw.subarray(12, 28))
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()])
}

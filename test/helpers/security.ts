// Helpers for the adversarial suite in test/security/.
import crypto from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { MfaHandler, type AuthKitOptions, type AuthKitEvent } from '../../src/index.js'
import { buildApp, post, newUser, secretOf, stepUp, totp } from './app.js'

/** A fresh directory for SQLite files, removed at teardown. */
export function tempDir (t: { teardown (fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'auth-kit-sec-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A sending method that "delivers" by recording the code, so a test can read
 * what a phone would receive.
 */
export function recordingMethod (name = 'sms') {
  const outbox: Array<{ userId: string, code: string }> = []
  class RecordingHandler extends MfaHandler {
    static override NAME = name
    static override REQUIRES_DISPATCH = true
    static override SETUP_RESPONSE_MESSAGE = 'A code has been sent to your phone.'
    override async sendCode (): Promise<void> {
      const code = await this.getOtpCode()
      outbox.push({ userId: String(this.user.id), code })
    }
  }
  return {
    Handler: RecordingHandler,
    outbox,
    /** The latest code sent to a user. */
    last (userId: string): string {
      const mine = outbox.filter((m) => m.userId === userId)
      if (mine.length === 0) throw new Error(`no code was sent to ${userId}`)
      return mine[mine.length - 1].code
    },
    count (userId: string): number { return outbox.filter((m) => m.userId === userId).length },
  }
}

/** Every log line the app writes, as text and parsed. */
export function logCapture () {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter((l) => l !== ''))
      done()
    },
  })
  return { stream, lines, text: () => lines.join('\n'), parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) }
}

/** Collects onEvent calls. */
export function eventLog () {
  const events: AuthKitEvent[] = []
  return { events, onEvent: (e: AuthKitEvent) => { events.push(e) }, ofType: (type: string) => events.filter((e) => e.type === type) }
}

/** Two plugin instances, as two processes would be, sharing one SQLite file. */
export async function twoInstances (t: { teardown (fn: () => unknown): void }, options: Partial<AuthKitOptions>): Promise<[FastifyInstance, FastifyInstance]> {
  const dir = tempDir(t)
  const database = `sqlite:${join(dir, 'shared.db')}`
  // Started one after the other: the second finds the migrations done.
  const a = await buildApp({ database, ...options })
  const b = await buildApp({ database, ...options })
  t.teardown(async () => { await a.close(); await b.close() })
  return [a, b]
}

/** Deterministic PRNG (mulberry32), so a failing fuzz run can be replayed from its seed. */
export function seededRandom (seed: number) {
  let s = seed >>> 0
  const next = (): number => {
    s = (s + 0x6D2B79F5) >>> 0
    let r = Math.imul(s ^ (s >>> 15), 1 | s)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)],
    chance: (p: number) => next() < p,
  }
}

/**
 * A user whose primary is the app method and who also has the recording
 * method active. The clock has moved past the confirm step and the step that
 * stepped the session up: `access` carries `mfa`, as the method routes want
 * once a method is active (SPEC section 3, "Methods", rule 1).
 */
export async function userWithAppAndSms (
  app: FastifyInstance,
  clock: { now: () => number, advance: (s: number) => void },
  sms: ReturnType<typeof recordingMethod>,
) {
  const user = await newUser(app)
  const created = await post(app, '/mfa/', { method: 'app' }, user.access)
  if (created.status !== 201) throw new Error(`create app failed: ${JSON.stringify(created.body)}`)
  const secret = secretOf(created.body.setup_data.qr_link)
  const confirmed = await post(app, '/mfa/confirm/', { method: 'app', code: await totp(secret, clock.now()) }, user.access)
  if (confirmed.status !== 200) throw new Error(`confirm app failed: ${JSON.stringify(confirmed.body)}`)
  clock.advance(30)
  const access = await stepUp(app, user.access, await totp(secret, clock.now()))
  const smsCreated = await post(app, '/mfa/', { method: sms.Handler.NAME }, access)
  if (smsCreated.status !== 201) throw new Error(`create sms failed: ${JSON.stringify(smsCreated.body)}`)
  const smsConfirmed = await post(app, '/mfa/confirm/', { method: sms.Handler.NAME, code: sms.last(user.id) }, access)
  if (smsConfirmed.status !== 200) throw new Error(`confirm sms failed: ${JSON.stringify(smsConfirmed.body)}`)
  clock.advance(30)
  return { ...user, access, secret, backupCodes: created.body.backup_codes as string[], smsBackupCodes: smsCreated.body.backup_codes as string[] }
}

/** Step 1 of a login; the ephemeral token. */
export async function startLogin (app: FastifyInstance, user: { username: string, password: string }): Promise<string> {
  const res = await post(app, '/login/', { username: user.username, password: user.password })
  if (res.status !== 200 || res.body.mfa_enabled !== true) throw new Error(`login step 1 failed: ${JSON.stringify(res.body)}`)
  return res.body.ephemeral_token as string
}

/** A six-digit code that is none of the given ones. */
export function wrongCode (...right: string[]): string {
  for (let n = 0; ; n++) {
    const candidate = String(100000 + ((n * 7919) % 900000))
    if (!right.includes(candidate)) return candidate
  }
}

/** The codes an authenticator shows around `nowMs`: every one the server accepts (window 1). */
export async function totpWindow (secret: string, nowMs: number, period = 30): Promise<string[]> {
  return Promise.all([-1, 0, 1].map(async (k) => totp(secret, nowMs + k * period * 1000, period)))
}

/**
 * Counts scrypt runs: the slow password hash is the work that makes a wrong
 * password cost what an unknown user costs. Timing itself is left to the
 * benchmark; here both paths must do the same work.
 */
export function countScrypt (t: { teardown (fn: () => void): void }) {
  const original = crypto.scrypt
  let runs = 0
  crypto.scrypt = ((...args: unknown[]) => {
    runs++
    return (original as (...a: unknown[]) => void)(...args)
  }) as typeof crypto.scrypt
  syncBuiltinESMExports()
  t.teardown(() => {
    crypto.scrypt = original
    syncBuiltinESMExports()
  })
  return { reset: () => { runs = 0 }, get runs () { return runs } }
}

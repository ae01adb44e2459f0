// Helpers for the adversarial suite in test/security/.
import crypto from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { AuthKitOptions, AuthKitEvent } from '../../src/index.js'
import { buildApp, totp } from './app.js'

/** A fresh directory for SQLite files, removed at teardown. */
export function tempDir (t: { teardown (fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'auth-kit-sec-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
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

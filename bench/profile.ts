/**
 * Summarizes a V8 .cpuprofile (node --cpu-prof) by self time: per area
 * (SQLite and Kysely, crypto and JWT, the plugin's code, Fastify, node core,
 * GC) and the top frames, idle time left out.
 */
import { readFileSync } from 'node:fs'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const SQLITE_RUN = new Set(['run', 'get', 'all', 'iterate', 'exec', 'pragma'])
const SQLITE_PREPARE = new Set(['prepare', 'Statement'])
const CRYPTO_NATIVE = new Set(['init', 'initiv', 'update', 'final', 'digest', 'Hmac', 'Hash', 'scrypt', 'setAAD', 'setAuthTag', 'getAuthTag', 'randomFillSync', 'timingSafeEqual'])

export function areaOf (frame: CallFrame): string {
  const { url, functionName } = frame
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(program)') return 'V8 / native (program)'
  // Native frames have no url: better-sqlite3's methods (their time includes
  // SQLite's own work and any sync to disk a commit waits for) and crypto.
  if (url === '' && SQLITE_RUN.has(functionName)) return 'SQLite: running statements'
  if ((url === '' && SQLITE_PREPARE.has(functionName)) || (/node_modules\/better-sqlite3\//.test(url) && functionName === 'prepare')) return 'SQLite: compiling statements'
  if (/node_modules\/better-sqlite3\//.test(url)) return 'SQLite: running statements'
  if (/node_modules\/kysely\//.test(url)) return 'Kysely: building queries'
  if (/node_modules\/(fast-jwt|otplib|@otplib|@noble|@scure)/.test(url) || url.startsWith('node:internal/crypto') || url === 'node:crypto' || (url === '' && CRYPTO_NATIVE.has(functionName))) return 'crypto / JWT'
  if (/\/src\//.test(url) || /\/schemas\//.test(url) || /\/migrations\//.test(url)) return 'plugin code'
  if (/node_modules\/(fastify|@fastify|find-my-way|avvio|fast-json-stringify|ajv|fast-uri|light-my-request|pino|abstract-logging|secure-json-parse|fast-querystring|toad-cache|rfdc|process-warning)/.test(url)) return 'Fastify'
  if (url.startsWith('node:') || url === '') return 'node core'
  if (url.includes('node_modules/')) return 'other dependencies'
  return 'bench harness'
}

export interface ProfileSummary {
  totalMs: number
  areas: Array<{ area: string, ms: number, share: number }>
  top: Array<{ frame: string, area: string, ms: number, share: number }>
}

export function summarizeProfile (file: string, topN = 20): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const selfTime = new Map<number, number>()
  profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const byArea = new Map<string, number>()
  const byFrame = new Map<string, { area: string, us: number }>()
  for (const node of profile.nodes) {
    const us = selfTime.get(node.id) ?? 0
    if (us === 0) continue
    const area = areaOf(node.callFrame)
    if (area === 'idle') continue
    byArea.set(area, (byArea.get(area) ?? 0) + us)
    const where = node.callFrame.url.replace(/^.*node_modules\//, '').replace(/^.*\/bench\/\.build\//, '').replace(/^file:\/\//, '')
    const key = `${node.callFrame.functionName || '(anonymous)'} ${where}${where === '' ? '' : `:${node.callFrame.lineNumber + 1}`}`
    const entry = byFrame.get(key) ?? { area, us: 0 }
    entry.us += us
    byFrame.set(key, entry)
  }
  const total = [...byArea.values()].reduce((a, b) => a + b, 0)
  return {
    totalMs: total / 1000,
    areas: [...byArea].sort((a, b) => b[1] - a[1]).map(([area, us]) => ({ area, ms: us / 1000, share: us / total })),
    top: [...byFrame].sort((a, b) => b[1].us - a[1].us).slice(0, topN).map(([frame, e]) => ({ frame, area: e.area, ms: e.us / 1000, share: e.us / total })),
  }
}

export function formatProfile (summary: ProfileSummary): string {
  const lines = [`busy CPU time ${summary.totalMs.toFixed(0)} ms (idle left out), by area of self time:`]
  for (const a of summary.areas) lines.push(`  ${a.area.padEnd(30)} ${(100 * a.share).toFixed(1).padStart(5)} %`)
  lines.push('top frames by self time:')
  for (const t of summary.top) lines.push(`  ${(100 * t.share).toFixed(1).padStart(5)} %  ${t.area.padEnd(28)} ${t.frame}`)
  return lines.join('\n')
}

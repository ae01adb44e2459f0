/**
 * Debug runs only (BENCH_SQL_LOG=1): counts every SQL statement a server runs
 * on better-sqlite3, by kind, and the time spent in them, by wrapping the driver's Statement methods, so
 * the plugin's own connection (made in src/db/connect.ts) is counted as it is,
 * with no change to the plugin. GET /__bench/sql returns the counts since the
 * previous call (?sources=1: the statements' text instead).
 */
import SQLite from 'better-sqlite3'
import type { FastifyInstance } from 'fastify'

export interface SqlCounter {
  route (app: FastifyInstance): void
}

export function installSqlCounter (): SqlCounter {
  let counts: Record<string, number> = {}
  let inTransaction = false
  let sources: string[] = []
  /** Time in SQLite per statement text (µs) and calls, since the previous call of the route. */
  let byStatement = new Map<string, { calls: number, micros: number }>()
  const probe = new SQLite(':memory:')
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, (...args: unknown[]) => unknown>
  probe.close()
  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = proto[method]
    proto[method] = function (this: { source: string }, ...args: unknown[]) {
      const kind = /^\s*(\w+)/.exec(this.source)?.[1]?.toUpperCase() ?? '?'
      counts[kind] = (counts[kind] ?? 0) + 1
      const started = process.hrtime.bigint()
      try {
        return original.apply(this, args)
      } finally {
        // Time inside SQLite (and the driver's binding), in µs, summed under 'µs'.
        const micros = Number(process.hrtime.bigint() - started) / 1000
        counts['µs'] = (counts['µs'] ?? 0) + micros
        if (sources.length < 100) sources.push(`${this.source.replace(/\s+/g, ' ').slice(0, 150)}  [${micros.toFixed(0)} µs]`)
        const seen = byStatement.get(this.source) ?? { calls: 0, micros: 0 }
        seen.calls++
        seen.micros += micros
        byStatement.set(this.source, seen)
        updateCommits(kind)
      }
    }
  }
  /** Commits: each write outside BEGIN…COMMIT commits on its own. */
  function updateCommits (kind: string): void {
    if (kind === 'BEGIN' || kind === 'SAVEPOINT') inTransaction = true
    else if (kind === 'COMMIT' || kind === 'END' || kind === 'ROLLBACK' || kind === 'RELEASE') {
      if (kind !== 'ROLLBACK') counts.commits = (counts.commits ?? 0) + 1
      inTransaction = false
    } else if (!inTransaction && (kind === 'INSERT' || kind === 'UPDATE' || kind === 'DELETE' || kind === 'REPLACE')) {
      counts.commits = (counts.commits ?? 0) + 1
    }
  }
  return {
    route (app) {
      app.get('/__bench/sql', async (request) => {
        const query = request.query as { sources?: string, statements?: string }
        const result = query.sources === '1'
          ? { sources }
          : query.statements === '1'
            ? { counts, statements: [...byStatement].map(([source, s]) => ({ source: source.replace(/\s+/g, ' ').slice(0, 150), calls: s.calls, micros: s.micros })) }
            : counts
        counts = {}
        sources = []
        byStatement = new Map()
        return result
      })
    },
  }
}

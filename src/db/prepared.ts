import type { CompiledQuery, Compilable, Kysely, QueryId, QueryResult, RootOperationNode } from 'kysely'
import type { Database } from './types.js'

/** An argument of a prepared query: one value, or a list for `in (…)` (its length is part of the query's shape). */
type Argument = string | number | null | readonly (string | number)[]

/** Where each parameter of the compiled SQL comes from: an argument (and list index), or a constant of the query. */
type Slot = { arg: number, item: number } | { constant: unknown }

interface Template {
  sql: string
  query: RootOperationNode
  queryId: QueryId
  slots: Slot[]
}

/** Marks argument `arg` (item `item` of a list) while the query is built once; never a real value (it holds NUL characters). */
function marker (arg: number, item: number): string {
  return `\u0000auth-kit-arg:${arg}:${item}\u0000`
}
const MARKER = /^\u0000auth-kit-arg:(\d+):(-?\d+)\u0000$/

/**
 * A query of fixed shape that Kysely builds and compiles once per database
 * (per dialect and list lengths), then runs with each call's arguments.
 *
 * Kysely builds an operation tree and compiles it to SQL on every call, which
 * on the login and `authenticate` paths cost about a sixth of a request's CPU
 * (bench/README.md, "Profiles"); the SQL text it makes is the same every time.
 * The query is built with marker strings in place of the arguments, and the
 * compiled parameters are mapped back to them; a query whose markers do not all
 * come out as parameters (an argument inlined or transformed) is never cached
 * but built every time, as is any query on a Kysely instance with plugins
 * (a plugin may rewrite each query by its id). The SQL string is the same
 * object on every call, so the SQLite driver's statement cache finds it at once.
 *
 * `build` must not branch on or compute with its arguments: they are markers
 * the first time.
 */
export class PreparedQuery<A extends Argument[], O> {
  private readonly templates = new WeakMap<object, Map<string, Template | null>>()

  constructor (private readonly build: (db: Kysely<Database>, ...args: A) => Compilable<O>) {}

  /** The query's rows. */
  async all (db: Kysely<Database>, ...args: A): Promise<O[]> {
    return (await this.execute(db, args)).rows
  }

  /** The first row, or undefined. */
  async first (db: Kysely<Database>, ...args: A): Promise<O | undefined> {
    return (await this.execute(db, args)).rows[0]
  }

  /** Rows an INSERT, UPDATE or DELETE touched, as the dialect reports them. */
  async run (db: Kysely<Database>, ...args: A): Promise<number> {
    return Number((await this.execute(db, args)).numAffectedRows ?? 0n)
  }

  private async execute (db: Kysely<Database>, args: A): Promise<QueryResult<O>> {
    const executor = db.getExecutor()
    if (executor.plugins.length > 0) return db.executeQuery(this.build(db, ...args))
    const shape = args.map((a) => (Array.isArray(a) ? a.length : '')).join(',')
    let byShape = this.templates.get(executor.adapter)
    if (byShape === undefined) this.templates.set(executor.adapter, byShape = new Map())
    let template = byShape.get(shape)
    if (template === undefined) byShape.set(shape, template = this.compile(db, args))
    if (template === null) return db.executeQuery(this.build(db, ...args))
    const parameters = template.slots.map((slot) => {
      if ('constant' in slot) return slot.constant
      const value = args[slot.arg]
      return slot.item < 0 ? value : (value as readonly unknown[])[slot.item]
    })
    const compiled: CompiledQuery<O> = { sql: template.sql, query: template.query, queryId: template.queryId, parameters }
    // Straight to the connection: with no plugins, Kysely's own executeQuery adds
    // only two more async layers (a result transform that does nothing).
    return executor.provideConnection(async (connection) => connection.executeQuery<O>(compiled))
  }

  /** The template for arguments of this shape, or null when the query cannot be reused. */
  private compile (db: Kysely<Database>, args: A): Template | null {
    const markers = args.map((a, i) => (Array.isArray(a) ? a.map((_, j) => marker(i, j)) : marker(i, -1))) as A
    const compiled = this.build(db, ...markers).compile()
    const seen = new Set<string>()
    const slots: Slot[] = compiled.parameters.map((p) => {
      const match = typeof p === 'string' ? MARKER.exec(p) : null
      if (match === null) return { constant: p }
      seen.add(p as string)
      return { arg: Number(match[1]), item: Number(match[2]) }
    })
    const expected = markers.flat().length
    if (seen.size !== expected || compiled.sql.includes('\u0000')) return null
    return { sql: compiled.sql, query: compiled.query, queryId: compiled.queryId, slots }
  }
}

/** A prepared query (see PreparedQuery): `build` is called once per dialect with markers for its arguments. */
export function prepare<A extends Argument[], O> (build: (db: Kysely<Database>, ...args: A) => Compilable<O>): PreparedQuery<A, O> {
  return new PreparedQuery(build)
}

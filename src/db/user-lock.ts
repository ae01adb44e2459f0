import type { Kysely, Transaction } from 'kysely'
import type { Database } from './types.js'
import { UserLockRepository, type UserLockRow } from '../repositories/user-locks.js'
import type { MethodRow } from '../repositories/methods.js'

/** A transaction that holds one user's lock, and that user's lockout row as it read it. */
export interface UserTransaction {
  trx: Transaction<Database>
  lock: UserLockRow
  /** With `{ withMethods: true }`: every method row of the user, oldest first, read under the lock. */
  methods?: MethodRow[]
}

const NO_ROW = Symbol('no lock row')
const MAX_RETRIES = 4

/** Errors after which the whole transaction may simply run again. */
function retryable (err: unknown): boolean {
  const e = err as { code?: unknown, errno?: unknown } | null
  // PostgreSQL deadlock / serialization failure; MySQL deadlock / lock wait timeout; SQLite busy.
  return e !== null && typeof e === 'object' && (
    e.code === '40P01' || e.code === '40001' || e.errno === 1213 || e.errno === 1205 ||
    e.code === 'SQLITE_BUSY' || e.code === 'SQLITE_BUSY_SNAPSHOT'
  )
}

/**
 * Runs `work` in one transaction that first takes the user's lock, so every
 * change to one user's factors, codes and counts happens one at a time, in
 * any number of processes (rule 10), and all of it or nothing is kept: a
 * crash or a thrown error rolls the whole change back.
 *
 * With `options.withMethods`, `tx.methods` holds the user's method rows, read
 * under the lock (in the same query as the lock where the database allows).
 *
 * `work` must use `trx` for every query (a query on the outer instance would
 * wait for this very transaction). Throws what `work` throws.
 */
export async function inUserLock<T> (db: Kysely<Database>, userId: string, work: (tx: UserTransaction) => Promise<T>, options: { withMethods?: boolean } = {}): Promise<T> {
  let ensured = false
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction().execute(async (trx) => {
        const locks = new UserLockRepository(trx)
        if (options.withMethods === true) {
          const held = await locks.holdWithMethods(userId)
          if (held === undefined) throw NO_ROW
          return work({ trx, lock: held.lock, methods: held.methods })
        }
        const lock = await locks.hold(userId)
        if (lock === undefined) throw NO_ROW
        return work({ trx, lock })
      })
    } catch (err) {
      if (err === NO_ROW) {
        if (ensured) throw new Error(`fastify-auth-kit: could not create the lock row of user ${userId}`)
        ensured = true
        await new UserLockRepository(db).ensure(userId)
        continue
      }
      if (attempt < MAX_RETRIES && retryable(err)) continue
      throw err
    }
  }
}

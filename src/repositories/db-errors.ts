// Each driver reports a constraint or a lock conflict its own way; these are
// the one place that reads them.

interface DriverError { code?: unknown, errno?: unknown }

/** A unique or primary key refused the row (PostgreSQL 23505, MySQL 1062, SQLite). */
export function isUniqueViolation (err: unknown): boolean {
  const { code, errno } = (err ?? {}) as DriverError
  return code === '23505' || errno === 1062 || code === 'ER_DUP_ENTRY' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
}

/**
 * The database gave up on a statement because of another transaction (deadlock,
 * serialization failure, lock wait timeout, busy file): trying again is safe.
 */
export function isTransientConflict (err: unknown): boolean {
  const { code, errno } = (err ?? {}) as DriverError
  return code === '40P01' || code === '40001' || errno === 1213 || errno === 1205 || code === 'SQLITE_BUSY'
}

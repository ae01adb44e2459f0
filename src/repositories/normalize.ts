// Values come back differently per dialect: PostgreSQL gives BIGINT as a
// string, SQLite and MySQL give integers for flags. These are the one place
// that turns them into the types the services use.

export function toNumber (value: unknown): number {
  return typeof value === 'number' ? value : Number(value)
}

export function toNullableNumber (value: unknown): number | null {
  return value === null || value === undefined ? null : toNumber(value)
}

export function toBool (value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 1n
}

/** Rows an UPDATE or DELETE touched, whatever the dialect reports. */
export function affected (result: { numUpdatedRows?: bigint, numDeletedRows?: bigint } | undefined): number {
  if (result === undefined) return 0
  return Number(result.numUpdatedRows ?? result.numDeletedRows ?? 0n)
}

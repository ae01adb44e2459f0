import { MysqlAdapter, sql, type Kysely } from 'kysely'

/**
 * CREATE INDEX that does nothing when the index is there already, so a
 * migration interrupted on a database without transactional DDL can run
 * again. PostgreSQL, SQLite and MariaDB say "if not exists" themselves;
 * MySQL has no such clause, so there the catalogue is asked first.
 */
export async function createIndexOnce (db: Kysely<any>, name: string, table: string, columns: string[]): Promise<void> {
  if (db.getExecutor().adapter instanceof MysqlAdapter) {
    const { rows } = await sql<{ n: number }>`
      SELECT COUNT(*) AS n FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${table} AND INDEX_NAME = ${name}`.execute(db)
    if (Number(rows[0]?.n ?? 0) > 0) return
    await db.schema.createIndex(name).on(table).columns(columns).execute()
    return
  }
  await db.schema.createIndex(name).ifNotExists().on(table).columns(columns).execute()
}

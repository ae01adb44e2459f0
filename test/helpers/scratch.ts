import { randomBytes } from 'node:crypto'

// Scratch databases with settings test/helpers/dialects.ts does not make:
// a MySQL/MariaDB database with a chosen default character set.

const MYSQL_ADMIN = process.env.AUTH_KIT_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306/test'

export interface Scratch { url: string, name: string, drop: () => Promise<void> }

/** A fresh MySQL/MariaDB database whose default character set is `charset`, or why there cannot be one. */
export async function mysqlDatabaseWithCharset (charset: string): Promise<Scratch | { unavailable: string }> {
  const { default: mysql2 } = await import('mysql2/promise')
  let admin
  try {
    admin = await mysql2.createConnection({ uri: MYSQL_ADMIN, connectTimeout: 3000 })
  } catch (err) {
    return { unavailable: `MySQL/MariaDB is not reachable at ${MYSQL_ADMIN} (${(err as Error).message}); set AUTH_KIT_TEST_MYSQL to run this test` }
  }
  const name = `auth_kit_test_${randomBytes(6).toString('hex')}`
  try {
    await admin.query(`CREATE DATABASE ${name} CHARACTER SET ${charset}`)
  } catch (err) {
    await admin.end()
    return { unavailable: `this server cannot make a ${charset} database (${(err as Error).message})` }
  }
  await admin.end()
  const url = new URL(MYSQL_ADMIN)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    drop: async () => {
      const client = await mysql2.createConnection({ uri: MYSQL_ADMIN })
      await client.query(`DROP DATABASE IF EXISTS ${name}`)
      await client.end()
    },
  }
}

/** Runs one statement as the MySQL admin (catalogue queries, DDL the test sets up). */
export async function mysqlQuery<T = any> (database: string, statement: string, values: unknown[] = []): Promise<T[]> {
  const { default: mysql2 } = await import('mysql2/promise')
  const url = new URL(MYSQL_ADMIN)
  url.pathname = `/${database}`
  const client = await mysql2.createConnection({ uri: url.toString() })
  try {
    const [rows] = await client.query(statement, values)
    return rows as T[]
  } finally {
    await client.end()
  }
}

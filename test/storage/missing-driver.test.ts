import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// Section 8: the database drivers are optional peer dependencies. A host that
// asks for a dialect whose driver it has not installed gets a registration
// error naming the package to install. Shown for real: the built plugin is
// installed in a scratch node_modules holding every dependency but the
// drivers, so Node's own resolution cannot find them.

t.setTimeout(5 * 60 * 1000)
const run = promisify(execFile)
const root = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const drivers = ['pg', 'mysql2', 'better-sqlite3']

const scratch = mkdtempSync(join(tmpdir(), 'auth-kit-drivers-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))
const modules = join(scratch, 'node_modules')
const pkg = join(modules, 'fastify-auth-kit')
mkdirSync(pkg, { recursive: true })
await run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--outDir', join(pkg, 'dist'), '--sourceMap', 'false', '--declaration', 'false'])
cpSync(join(root, 'package.json'), join(pkg, 'package.json'))
for (const entry of readdirSync(join(root, 'node_modules'))) {
  if (entry.startsWith('.') || drivers.includes(entry)) continue
  symlinkSync(join(root, 'node_modules', entry), join(modules, entry))
}

writeFileSync(join(scratch, 'host.mjs'), `
import Fastify from 'fastify'
import authKitMfa from 'fastify-auth-kit'
const results = {}
for (const database of process.argv.slice(2)) {
  const app = Fastify({ logger: false })
  try {
    await app.register(authKitMfa, { secret: 'x'.repeat(32), database, docs: false })
    await app.ready()
    results[database] = 'registered'
  } catch (err) {
    results[database] = err.message
  }
  await app.close().catch(() => {})
}
console.log(JSON.stringify(results))
`)

const urls = { pg: 'postgres://postgres@127.0.0.1:5432/postgres', mysql2: 'mysql://root@127.0.0.1:3306/test', 'better-sqlite3': 'sqlite::memory:' }
const { stdout } = await run(process.execPath, ['host.mjs', ...Object.values(urls)], { cwd: scratch })
const results = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, string>

for (const [driver, url] of Object.entries(urls)) {
  t.test(`${url.split(':')[0]}: without ${driver} installed, registration fails naming the package`, async (t) => {
    t.match(results[url], new RegExp(`"${driver}"`), results[url])
    t.match(results[url], `npm install ${driver}`)
    t.notMatch(results[url], /Cannot find (module|package)/, 'not the bare resolution error')
  })
}

t.test('the drivers are optional peer dependencies, and devDependencies for these tests', async (t) => {
  const { default: manifest } = await import(join(root, 'package.json'), { with: { type: 'json' } })
  for (const driver of drivers) {
    t.ok(manifest.peerDependencies[driver], `${driver} is a peer dependency`)
    t.equal(manifest.peerDependenciesMeta[driver]?.optional, true, `${driver} is optional`)
    t.ok(manifest.devDependencies[driver], `${driver} is a devDependency`)
    t.notOk(manifest.dependencies[driver], `${driver} is not a dependency every host compiles`)
  }
})

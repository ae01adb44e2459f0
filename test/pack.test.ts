import t from 'tap'
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// The package as a user gets it: `npm pack`, installed from the tarball into a
// project outside the repository, imported by name. The install builds
// better-sqlite3 from source here (no prebuilt download), which takes minutes.
t.setTimeout(15 * 60 * 1000)

const run = promisify(execFile)
const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
// Nested npm must not inherit the settings of an `npm test` that runs this file.
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')))
const npm = (args: string[], cwd: string) => run('npm', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 })

const scratch = mkdtempSync(join(tmpdir(), 'auth-kit-pack-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

const [packed] = JSON.parse((await npm(['pack', '--json', '--pack-destination', scratch], root)).stdout.replace(/^[^[]*/, ''))
const files: string[] = packed.files.map((f: { path: string }) => f.path)

t.test('the tarball holds the built package and nothing else', async (t) => {
  for (const file of ['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/plugin.js', 'dist/migrations/0001_initial.js', 'dist/migrations/index.js', 'dist/schemas/index.js', 'dist/schemas/common.d.ts']) {
    t.ok(files.includes(file), `has ${file}`)
  }
  for (const file of files.filter((f) => f.endsWith('.js'))) t.ok(files.includes(file.replace(/\.js$/, '.d.ts')), `${file} has its .d.ts`)
  t.same(files.filter((f) => /^(test|src|schemas|migrations|examples|bench|notes|\.ci|node_modules)\//.test(f)), [], 'no sources, tests, examples or tooling')
  t.same(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), [], 'no TypeScript sources')
  t.same(files.filter((f) => f.endsWith('.map')), [], 'no source maps pointing at unshipped sources')
  t.notOk(files.some((f) => f.includes('tsconfig')), 'no tsconfig')
})

t.test('installed from the tarball, it works by its name', async (t) => {
  const project = join(scratch, 'project')
  rmSync(project, { recursive: true, force: true })
  await run('mkdir', ['-p', project])
  // better-sqlite3 is an optional peer dependency: a SQLite host installs it itself.
  // npm 11 runs a dependency's install script only if the project approves it.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module', allowScripts: { 'better-sqlite3': true } }, null, 2))
  await npm(['install', '--no-audit', '--no-fund', '--prefer-offline', join(scratch, packed.filename), 'fastify@5', 'better-sqlite3'], project)
  t.ok(existsSync(join(project, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')), "better-sqlite3's install script built it")

  copyFileSync(join(root, 'test/fixtures/pack/consumer.mjs'), join(project, 'consumer.mjs'))
  const { stdout } = await run(process.execPath, ['consumer.mjs'], { cwd: project, env })
  const result = JSON.parse(stdout.trim().split('\n').pop()!)
  t.equal(result.resolved, `file://${join(project, 'node_modules/fastify-auth-kit/dist/src/index.js')}`, 'resolves to the installed dist/src/index.js')
  t.equal(result.defaultIsNamed, true, 'the default export and the named authKitMfa are one plugin')
  t.equal(result.appHandler, 'app')
  t.same(result.handlers, ['app'])
  t.equal(result.registration.status, 201)
  t.same(result.registration.body, { user: { id: result.registration.body.user.id, username: 'packed', email: 'packed@example.com' } })
  t.same(result.login, { status: 200, mfa_enabled: false, keys: ['access', 'access_expiration', 'mfa_enabled', 'refresh', 'refresh_expiration', 'user'] })
  t.same(result.user, { status: 200, body: result.registration.body })
  t.same(result.created, { status: 201, qr: true }, 'the bundled migrations made the tables')
  t.equal(result.docs.status, 200)
  t.ok(result.docs.paths >= 10, 'the OpenAPI document lists the routes')
  t.equal(result.ui, 200, 'Swagger UI assets are served from the installed package')

  t.test('its types work for a TypeScript host', async (t) => {
    writeFileSync(join(project, 'host.ts'), `
import Fastify from 'fastify'
import authKitMfa, { authKitMfa as named, AppHandler, EmailHandler, MfaHandler, type AuthKitOptions, type UserStore } from 'fastify-auth-kit'

class SmsHandler extends MfaHandler {
  static override NAME = 'sms'
  override async sendCode (): Promise<void> { await this.getOtpCode() }
}
const options: AuthKitOptions = { secret: 'x'.repeat(32), database: 'sqlite::memory:', mfa: { handlers: [AppHandler, SmsHandler] } }
const app = Fastify()
await app.register(named, options)
app.get('/me', { preHandler: app.authKit.authenticate }, async (request) => ({ id: request.user.id }))
const names: string[] = app.authKit.handlers.list()
let store: UserStore | undefined
export { authKitMfa, EmailHandler, names, store }
`)
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, noImplicitOverride: true,
        types: ['node'], typeRoots: [join(root, 'node_modules/@types')],
      },
      files: ['host.ts'],
    }))
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project, env }).then(() => ({ code: 0, out: '' }), (err) => ({ code: err.code, out: String(err.stdout) }))
    t.equal(result.code, 0, `tsc accepts a host written against the published types${result.out === '' ? '' : `:\n${result.out}`}`)
  })
})

import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// SPEC section 7: "A TypeScript host that also uses @fastify/jwt compiles with
// strict and skipLibCheck: false." The host is what a user makes: the packed
// tarball installed into a project of its own, beside fastify and @fastify/jwt,
// with the README's examples pasted in verbatim. Only types are checked, so the
// install skips install scripts (no native SQLite build) and this stays quicker
// than test/pack.test.ts.
t.setTimeout(15 * 60 * 1000)

const run = promisify(execFile)
const root = resolve(fileURLToPath(new URL('..', import.meta.url)))
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')))
const npm = (args: string[], cwd: string) => run('npm', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 })
const tsc = join(root, 'node_modules/typescript/bin/tsc')

/** The README's TypeScript blocks, verbatim. */
const readmeBlocks = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((m) => m[1])
const block = (needle: string): string => {
  const found = readmeBlocks.find((b) => b.includes(needle))
  if (found === undefined) throw new Error(`README has no TypeScript block with ${needle}`)
  return found
}
const useExample = block("app.get('/me'")
const ordersExample = block("app.get('/orders'")
const reportsExample = block("app.get('/reports'")
const stepUpExample = block("app.post('/transfer'")
const startLoginExample = block("app.get('/oauth/callback'")
const hostSwaggerExample = block('refResolver: { buildLocalReference')
const userRecordMerge = block('interface AuthKitUserRecord')
const jwtMerge = block('interface FastifyJWT')

const scratch = mkdtempSync(join(tmpdir(), 'auth-kit-strict-host-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

const [packed] = JSON.parse((await npm(['pack', '--json', '--pack-destination', scratch], root)).stdout.replace(/^[^[]*/, ''))
const project = join(scratch, 'host')
await run('mkdir', ['-p', project])
writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'strict-host', private: true, type: 'module' }, null, 2))
await npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', join(scratch, packed.filename), 'fastify@5', '@fastify/jwt@10', '@fastify/swagger@9', '@types/node@20'], project)

writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
  compilerOptions: {
    target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, noEmit: true, types: ['node'],
  },
  include: ['*.ts'],
}, null, 2))

/** tsc over one host file in the scratch project (the other files moved aside). */
async function compile (name: string, source: string): Promise<{ code: number, out: string }> {
  const file = join(project, `${name}.ts`)
  writeFileSync(file, source)
  const result = await run(process.execPath, [tsc, '--project', 'tsconfig.json'], { cwd: project, env })
    .then(() => ({ code: 0, out: '' }), (err) => ({ code: Number(err.code ?? 1), out: String(err.stdout) }))
  rmSync(file)
  return result
}

// The README's /reports example is for a project with its own @fastify/swagger,
// whose types add `schema.security`.
const withSwagger = "import '@fastify/swagger'"

const withJwt = [
  withSwagger,
  "import swagger from '@fastify/swagger'",
  "import jwt from '@fastify/jwt'",
  useExample,
  ordersExample,
  stepUpExample,
  // The README's social-login example calls a function of the host's own.
  "declare function findUserFromProvider (request: import('fastify').FastifyRequest): Promise<import('fastify-auth-kit').AuthKitUserRecord>",
  startLoginExample,
  'const myGuard = app.authKit.authenticate',
  reportsExample,
  hostSwaggerExample,
  userRecordMerge,
  jwtMerge,
  "await app.register(jwt, { secret: 'a-secret-of-the-host-own-tokens-0123456789' })",
  "app.get('/whoami', { onRequest: async (request) => { await request.jwtVerify() } }, async (request) => ({ id: request.user.id, name: request.user.username }))",
].join('\n')

t.test('a strict host with its own @fastify/jwt compiles with skipLibCheck: false, the README examples verbatim', async (t) => {
  const result = await compile('host', withJwt)
  t.equal(result.code, 0, `tsc accepts it${result.out === '' ? '' : `:\n${result.out}`}`)
})

t.test('a strict host without @fastify/jwt compiles the same examples', async (t) => {
  const result = await compile('host', [withSwagger, useExample, ordersExample, 'const myGuard = app.authKit.authenticate', reportsExample, userRecordMerge,
    "app.get('/name', { preHandler: app.authKit.authenticate }, async (request) => request.user.username.toUpperCase())"].join('\n'))
  t.equal(result.code, 0, `tsc accepts it${result.out === '' ? '' : `:\n${result.out}`}`)
})

t.test('without the FastifyJWT declaration the README asks for, tsc says where', async (t) => {
  const result = await compile('host', withJwt.replace(jwtMerge, ''))
  t.not(result.code, 0, 'tsc refuses it')
  t.match(result.out, /TS2339/, 'request.user.id is unknown on @fastify/jwt\'s own user type, as the README says')
  t.match(result.out, /TS2430/, 'and that FastifyRequest does not fit AuthKitRequestFields, as the README says')
  t.notMatch(result.out, /TS2717/, 'never the conflict between two declarations of request.user')
})

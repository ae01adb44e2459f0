import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Issue 11: the demo (`npm start`) logs one readable line per request, with the
// error code of a 4xx and no stack trace for it. The demo runs as `npm start`
// runs it (node with tsx, examples/server.ts), on a scratch data directory.
const root = fileURLToPath(new URL('..', import.meta.url))
t.setTimeout(3 * 60 * 1000)

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('the demo logs one readable line per request, and no stack for a 4xx', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'auth-kit-demo-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const port = await freePort()
  // Nothing of the test runner's own instrumentation reaches the demo.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== 'NODE_OPTIONS' && !key.startsWith('TAP') && key !== 'LOG_LEVEL'))
  const demo = spawn(process.execPath, ['--import=tsx', 'examples/server.ts'], { cwd: root, env: { ...env, PORT: String(port), DEMO_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  demo.stderr.on('data', (chunk: Buffer) => { err += chunk.toString('utf8') })
  const exited = new Promise<void>((resolve) => demo.once('exit', () => resolve()))
  t.teardown(async () => {
    if (demo.exitCode === null && demo.signalCode === null) demo.kill('SIGTERM')
    await exited
  })
  await new Promise<void>((resolve, reject) => {
    demo.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
      // The last line the demo prints at start, whole: what comes after it is the request log.
      if (/Admin routes:[^\n]*\n/.test(out)) resolve()
    })
    void exited.then(() => reject(new Error(`the demo ended before listening:\n${out}\n${err}`)))
  })
  const started = out.length

  const base = `http://127.0.0.1:${port}`
  const send = async (method: string, path: string, body?: unknown): Promise<number> => {
    const res = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
    await res.arrayBuffer()
    return res.status
  }
  const password = 'correct horse battery staple'
  const requests: Array<[string, string, unknown, number, string]> = [
    ['GET', '/api/auth/user/', undefined, 401, 'AUTH_KIT_UNAUTHORIZED'],
    ['POST', '/api/auth/login/', { username: 'alice', password: 123 }, 400, 'FST_ERR_VALIDATION'],
    ['POST', '/api/auth/registration/', { username: 'alice', email: 'alice@example.com', password }, 201, ''],
    ['POST', '/api/auth/login/', { username: 'alice', password: 'not the password' }, 401, 'AUTH_KIT_INVALID_CREDENTIALS'],
    ['POST', '/admin/users/nobody/unlock', undefined, 403, ''],
    ['GET', '/no-such-page', undefined, 404, ''],
  ]
  for (const [method, path, body, status] of requests) t.equal(await send(method, path, body), status, `${method} ${path} answers ${status}`)
  // The line is written when the answer is sent; give the stream a moment to flush.
  for (let i = 0; i < 50 && out.slice(started).split('\n').filter((l) => l.includes(' → ')).length < requests.length; i++) await new Promise((resolve) => setTimeout(resolve, 100))

  const lines = out.slice(started).split('\n').filter((line) => line !== '')
  t.equal(lines.length, requests.length, `one line per request, nothing else:\n${lines.join('\n')}`)
  for (const [i, [method, path, , status, code]] of requests.entries()) {
    const line = lines[i] ?? ''
    const escaped = `${method} ${path}`.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
    t.match(line, new RegExp(`^\\d\\d:\\d\\d:\\d\\d INFO  \\[req-[0-9a-z]+\\] ${escaped} → ${status}${code === '' ? '' : ` ${code}`} in \\d+\\.\\d ms$`), `${method} ${path}: ${line}`)
  }
  t.notMatch(out, /NaN/, 'no NaN in any line')
  t.notMatch(out, /^\s+at /m, 'no stack trace')
  t.notMatch(out, /^\{/m, 'no raw JSON record')
  t.notOk(out.includes(password) || out.includes('not the password'), 'no password in the log')
  t.equal(err, '', 'nothing on stderr')
})

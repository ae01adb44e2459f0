import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { AppHandler } from '../src/index.js'
import { buildApp, manualClock, newUser, post } from './helpers/app.js'
import { SecondAppHandler, enableTotp } from './helpers/flows.js'

// A host that drops a handler from mfa.handlers leaves its users' active
// methods of that kind behind, ignored. The plugin says so when it loads.

function capture () {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l)); done() } })
  return { lines, logger: { level: 'warn', stream } }
}

t.test('active methods whose handler is no longer configured are reported at startup', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-kit-orphans-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const database = `sqlite:${join(dir, 'orphans.db')}`
  const clock = manualClock()

  const before = await buildApp({ database, now: clock.now, mfa: { handlers: [AppHandler, SecondAppHandler], backupCodes: { secureHash: false } } })
  const user = await newUser(before)
  await enableTotp(before, user.access, clock, SecondAppHandler.NAME)
  await before.close()

  const dropped = capture()
  const after = await buildApp({ database, now: clock.now }, { logger: dropped.logger })
  t.teardown(() => after.close())
  const warning = dropped.lines.find((l) => l.method === SecondAppHandler.NAME)
  t.ok(warning, 'a warning names the method')
  t.equal(warning?.users, 1)
  t.match(String(warning?.msg), /no handler named "second_app"/)
  const login = await post(after, '/login/', { username: user.username, password: user.password })
  t.equal(login.body.mfa_enabled, false, 'as the warning says, the ignored method asks for nothing')

  const restored = capture()
  const again = await buildApp({ database, now: clock.now, mfa: { handlers: [AppHandler, SecondAppHandler] } }, { logger: restored.logger })
  t.teardown(() => again.close())
  t.equal(restored.lines.filter((l) => l.method !== undefined).length, 0, 'no warning while the handler is configured')
  t.equal((await post(again, '/login/', { username: user.username, password: user.password })).body.mfa_enabled, true)
})

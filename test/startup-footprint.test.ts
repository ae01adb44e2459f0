import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

// Memory: a server mostly logs users in and checks tokens, so the libraries
// only some requests need are loaded by the first such request, not at
// start-up (bench/README.md, "rss"): @simplewebauthn/server with its ASN.1
// and X.509 code (passkeys), qrcode (a QR code), TypeBox's value checker (a
// method's setup data), and nodemailer only when the plugin makes the
// `email` option's transport. Shown in a real process, which reports the
// packages it has resolved after each stage.

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const scratch = mkdtempSync(join(tmpdir(), 'auth-kit-footprint-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

const { stdout } = await run(process.execPath, ['--import=tsx', 'test/fixtures/loaded-packages.ts', join(scratch, 'resolved.log')], { cwd: root })
const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { stage: string, loaded?: string[], [key: string]: unknown })
const at = (stage: string): string[] => {
  const loaded = lines.find((l) => l.stage === stage)?.loaded
  if (loaded === undefined) t.fail(`the host process reported no stage "${stage}"`)
  return loaded ?? []
}
const answers = Object.assign({}, ...lines.filter((l) => l.stage === 'answers'))

const LAZY = ['@simplewebauthn/server', 'nodemailer', 'qrcode', '@sinclair/typebox/value']

t.test('once registered and ready (docs on, passkeys offered), no library that only some requests need is loaded', async (t) => {
  const ready = at('ready')
  t.ok(ready.includes('kysely') && ready.includes('@sinclair/typebox'), 'the report sees the packages that are loaded')
  for (const name of LAZY) t.notOk(ready.includes(name), `${name} is not loaded`)
})

t.test('logging in and reading the docs load none of them either', async (t) => {
  t.equal(answers.docs, 200)
  t.equal(answers.user, 200)
  for (const name of LAZY) t.notOk(at('logged in').includes(name), `${name} is not loaded`)
})

t.test('setting up an authenticator app loads qrcode and the setup-data check, and answers with the QR code', async (t) => {
  t.equal(answers.app, 201)
  t.equal(answers.qr, true)
  t.ok(at('app method created').includes('qrcode'), 'qrcode is loaded')
  t.ok(at('app method created').includes('@sinclair/typebox/value'), 'the value checker is loaded')
  t.notOk(at('app method created').includes('@simplewebauthn/server'), '@simplewebauthn/server is not')
})

t.test('setting up a passkey loads @simplewebauthn/server, and answers with creation options', async (t) => {
  t.equal(answers.passkey, 201)
  t.equal(answers.challenge, 'string')
  t.ok(at('passkey method created').includes('@simplewebauthn/server'), '@simplewebauthn/server is loaded')
  t.notOk(at('passkey method created').includes('nodemailer'), 'nothing mails without the email option')
})

t.test('with the email option, nodemailer is loaded when the plugin registers, to make the transport', async (t) => {
  t.ok(at('email ready').includes('nodemailer'), 'nodemailer is loaded')
})

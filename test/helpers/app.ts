import Fastify, { type FastifyInstance } from 'fastify'
import { generate } from 'otplib'
import authKitMfa, { type AuthKitOptions, type UserStore } from '../../src/index.js'

export const SECRET = 'test-secret-that-is-at-least-32-characters-long'

/** A clock the test moves by hand. */
export function manualClock (start = Date.UTC(2026, 0, 1, 12, 0, 0)) {
  let t = start
  return { now: () => t, advance: (seconds: number) => { t += seconds * 1000 }, set: (ms: number) => { t = ms } }
}

export async function buildApp (options: Partial<AuthKitOptions> = {}, fastifyOptions: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...fastifyOptions })
  await app.register(authKitMfa, { secret: SECRET, database: 'sqlite::memory:', registration: true, docs: false, ...options } as AuthKitOptions)
  await app.ready()
  return app
}

export const P = '/api/auth'

/** A fresh app on a manual clock (`now` is the clock's), closed when the test ends. */
export async function clockedApp (t: { teardown: (fn: () => unknown) => void }, options: Partial<AuthKitOptions> = {}, fastifyOptions: Record<string, unknown> = {}) {
  const clock = manualClock()
  const app = await buildApp({ now: clock.now, ...options }, fastifyOptions)
  t.teardown(() => app.close())
  return { app, clock }
}

export async function post (app: FastifyInstance, url: string, body: unknown, access?: string) {
  const res = await app.inject({
    method: 'POST', url: P + url, payload: body as any,
    headers: access !== undefined ? { authorization: `Bearer ${access}` } : {},
  })
  return { status: res.statusCode, body: res.body === '' ? undefined : res.json(), headers: res.headers }
}

export async function get (app: FastifyInstance, url: string, access?: string) {
  const res = await app.inject({ method: 'GET', url: P + url, headers: access !== undefined ? { authorization: `Bearer ${access}` } : {} })
  return { status: res.statusCode, body: res.body === '' ? undefined : res.json(), headers: res.headers }
}

/**
 * An error answer as SPEC section 4 has it: `status`, Fastify's envelope with the same
 * `statusCode`, and `code`. One helper for every test file (issue 10, item 5).
 */
export function expectError (
  t: { equal: (found: unknown, wanted: unknown, message: string) => unknown },
  res: { status: number, body?: any },
  status: number,
  code: string,
  label = `${status} ${code}`,
): void {
  t.equal(res.status, status, label)
  t.equal(res.body?.statusCode, status, `${label}: statusCode in the envelope`)
  t.equal(res.body?.code, code, label)
}

let counter = 0
/** Registers a fresh user and logs in (one step: no MFA yet). */
export async function newUser (app: FastifyInstance, name?: string) {
  const username = name ?? `user${++counter}_${Math.random().toString(36).slice(2, 8)}`
  const password = 'correct horse battery'
  const reg = await post(app, '/registration/', { username, email: `${username}@example.com`, password })
  if (reg.status !== 201) throw new Error(`registration failed: ${JSON.stringify(reg.body)}`)
  const login = await post(app, '/login/', { username, password })
  if (login.status !== 200 || login.body.mfa_enabled !== false) throw new Error(`login failed: ${JSON.stringify(login.body)}`)
  return { username, password, id: reg.body.user.id as string, access: login.body.access as string, refresh: login.body.refresh as string }
}

export function secretOf (qrLink: string): string {
  return new URL(qrLink).searchParams.get('secret')!
}

export async function totp (secret: string, nowMs: number, period = 30): Promise<string> {
  return generate({ secret, period, epoch: Math.floor(nowMs / 1000) })
}

/**
 * `POST /login/step-up/` (SPEC section 9, "Step-up"): a code of `method`
 * (default the primary) or a backup code raises the caller's session; answers
 * the new access token, whose `amr` includes `mfa`. Throws on anything but 200.
 */
export async function stepUp (app: FastifyInstance, access: string, code: string, method?: string): Promise<string> {
  const res = await post(app, '/login/step-up/', method === undefined ? { code } : { code, method }, access)
  if (res.status !== 200) throw new Error(`step-up failed: ${JSON.stringify(res.body)}`)
  return res.body.access as string
}

/** What `POST /mfa/` answered. */
export interface CreatedMethod { method: string, backup_codes: string[], setup_data: Record<string, any> }

/**
 * Sets `method` up for the caller of `access`: `POST /mfa/`, then
 * `POST /mfa/confirm/` with the code `codeOf` finds for it (in the create
 * answer, a mailbox, a recording handler). Throws unless both succeed; the
 * clock does not move. The one create-then-confirm every flow below uses.
 */
export async function createAndConfirm (app: FastifyInstance, access: string, method: string, codeOf: (created: CreatedMethod) => string | Promise<string>): Promise<CreatedMethod> {
  const created = await post(app, '/mfa/', { method }, access)
  if (created.status !== 201) throw new Error(`create ${method} failed: ${JSON.stringify(created.body)}`)
  const confirmed = await post(app, '/mfa/confirm/', { method, code: await codeOf(created.body) }, access)
  if (confirmed.status !== 200) throw new Error(`confirm ${method} failed: ${JSON.stringify(confirmed.body)}`)
  return created.body
}

/** A TOTP method (`app` by default) set up and confirmed with the code of clock.now(), whose step is then spent. */
export async function confirmTotp (app: FastifyInstance, access: string, clock: { now: () => number }, method = 'app') {
  const created = await createAndConfirm(app, access, method, async (answer) => totp(secretOf(answer.setup_data.qr_link), clock.now()))
  return { secret: secretOf(created.setup_data.qr_link), backupCodes: created.backup_codes }
}

/**
 * A user with the app method set up and confirmed (primary). `access` carries
 * `mfa` (stepped up with the app's next TOTP step), as the method routes want
 * once a method is active (SPEC section 3, "Methods", rule 1); `refresh` is of
 * the same session. The clock has moved past both spent steps.
 */
export async function userWithApp (app: FastifyInstance, clock: { now: () => number, advance: (s: number) => void }) {
  const user = await newUser(app)
  const { secret, backupCodes } = await confirmTotp(app, user.access, clock)
  clock.advance(30) // the confirm step is spent
  const access = await stepUp(app, user.access, await totp(secret, clock.now()))
  clock.advance(30) // and so is the step-up step
  return { ...user, access, secret, backupCodes }
}

/**
 * The plugin over a host's own user store: `overrides` of the built-in store
 * (`base`) of a first instance, on that instance's database. Both close at
 * teardown; the app is not made ready, so a test can still add routes.
 */
export async function appOverStore (
  t: { teardown: (fn: () => unknown) => void },
  overrides: (base: UserStore<any>) => Partial<UserStore<any>>,
  options: Partial<AuthKitOptions> = {},
): Promise<FastifyInstance> {
  const inner = await buildApp({ now: options.now })
  t.teardown(() => inner.close())
  const base = inner.authKit.users
  const app = Fastify({ logger: false })
  await app.register(authKitMfa, { secret: SECRET, database: inner.authKit.db, users: storeOver(base, overrides(base)), registration: true, docs: false, ...options } as AuthKitOptions)
  t.teardown(() => app.close())
  return app
}

/**
 * A custom UserStore over another one (the built-in store of a plugin
 * instance), with some of its functions replaced: a host's store that bans
 * users, returns odd records or addresses, or fails.
 */
export function storeOver (base: UserStore<any>, overrides: Partial<UserStore<any>> = {}): UserStore<any> {
  return {
    findByLogin: async (login) => base.findByLogin(login),
    findById: async (id) => base.findById(id),
    verifyPassword: async (user, password) => base.verifyPassword(user, password),
    toPublic: (user) => base.toPublic(user),
    emailOf: (user) => base.emailOf(user),
    create: async (input) => base.create!(input),
    ...overrides,
  }
}

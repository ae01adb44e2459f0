import type { FastifyInstance } from 'fastify'
import QRCode from 'qrcode'
import { AppHandler } from '../../src/index.js'
import { P, confirmTotp, createAndConfirm, newUser, post, stepUp, totp } from './app.js'
import type { recordingSmsHandler } from './custom-handlers.js'

/**
 * A second TOTP-style method, so flows between two active methods can run
 * without email. It inherits the app method's setup data (qr_link, qr_code).
 */
export class SecondAppHandler extends AppHandler {
  static override NAME = 'second_app'
  static override DISPLAY_NAME = 'Second Authenticator'
  static override REQUIRES_DISPATCH = false
}

export interface Clock { now: () => number, advance: (seconds: number) => void }

/** The payload of a JWT, unchecked. */
export function jwtPayload (token: string): Record<string, any> {
  const [, payload] = token.split('.')
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
}

export { stepUp }

/**
 * Creates and confirms a TOTP method for a logged-in user; the step of
 * clock.now() is then spent. Once the user has an active method, `access` must
 * carry `mfa` (SPEC section 3, "Methods", rule 1). The answer's `access` does:
 * it is `access` itself when that already carries `mfa`; otherwise (the
 * user's first method) the clock moves a step on and the session is stepped up
 * with the new method's code of that step (SPEC section 9, "Step-up").
 */
export async function enableTotp (app: FastifyInstance, access: string, clock: Clock, method = 'app') {
  const { secret, backupCodes } = await confirmTotp(app, access, clock, method)
  let raised = access
  if (!(jwtPayload(access).amr ?? []).includes('mfa')) {
    clock.advance(30)
    raised = await stepUp(app, access, await totp(secret, clock.now()), method)
  }
  return { secret, backupCodes, access: raised }
}

/**
 * A user whose primary is the app method and who also has the recording
 * method `sms` active. The clock has moved past the confirm step and the step
 * that stepped the session up: `access` carries `mfa`, as the method routes
 * want once a method is active (SPEC section 3, "Methods", rule 1).
 */
export async function userWithAppAndSms (app: FastifyInstance, clock: Clock, sms: ReturnType<typeof recordingSmsHandler>) {
  const user = await newUser(app)
  const { secret, backupCodes } = await confirmTotp(app, user.access, clock)
  clock.advance(30)
  const access = await stepUp(app, user.access, await totp(secret, clock.now()))
  const smsCreated = await createAndConfirm(app, access, sms.Handler.NAME, () => sms.last(user.id))
  clock.advance(30)
  return { ...user, access, secret, backupCodes, smsBackupCodes: smsCreated.backup_codes }
}

/**
 * Step 1 of login, from 127.0.0.1 or the client address `from`; throws
 * unless a second step is asked for. The one step 1 of the suite.
 */
export async function startLogin (app: FastifyInstance, user: { username: string, password: string }, { from }: { from?: string } = {}) {
  const res = await app.inject({ method: 'POST', url: `${P}/login/`, payload: { username: user.username, password: user.password }, ...(from === undefined ? {} : { remoteAddress: from }) })
  const body = res.json()
  if (res.statusCode !== 200 || body.mfa_enabled !== true) throw new Error(`step 1 did not ask for a second step: ${res.body}`)
  return body as { mfa_enabled: true, ephemeral_token: string, method: string, methods: string[] }
}

/** Step 1 of login; its ephemeral token. */
export async function loginToken (app: FastifyInstance, user: { username: string, password: string }): Promise<string> {
  return (await startLogin(app, user)).ephemeral_token
}

/** Both steps with a code of the primary TOTP method; moves the clock a step on so the code is not a replay. */
export async function loginWithTotp (app: FastifyInstance, user: { username: string, password: string }, secret: string, clock: Clock) {
  clock.advance(30)
  const step1 = await startLogin(app, user)
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, code: await totp(secret, clock.now()) })
  if (step2.status !== 200) throw new Error(`step 2 failed: ${JSON.stringify(step2.body)}`)
  return step2.body as { access: string, refresh: string, access_expiration: string, refresh_expiration: string, user: Record<string, unknown> }
}

/** A well-formed six-digit code that is none of the given (right) ones. */
export function wrongCode (...right: string[]): string {
  for (let n = 0; ; n++) {
    const candidate = n < 10 ? String(n).repeat(6) : String(100000 + ((n * 7919) % 900000))
    if (!right.includes(candidate)) return candidate
  }
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/
export function isIso8601 (value: unknown): boolean {
  return typeof value === 'string' && ISO_8601.test(value) && !Number.isNaN(Date.parse(value))
}

/**
 * The dark modules of a QR code drawn as an SVG path of horizontal runs
 * ("M x y h n m dx dy h n …", as the qrcode package draws them), as rows of 0/1.
 */
export function qrModulesOfSvg (svg: string, margin: number): number[][] | null {
  const viewBox = /viewBox="0 0 (\d+) (\d+)"/.exec(svg)
  const path = /<path[^>]*stroke="[^"]*"[^>]*d="([^"]+)"/.exec(svg)
  if (viewBox === null || path === null) return null
  const size = Number(viewBox[1]) - 2 * margin
  if (size <= 0) return null
  const rows = Array.from({ length: size }, () => new Array<number>(size).fill(0))
  let x = 0
  let y = 0
  for (const [, op, args] of path[1].matchAll(/([MmHh])([^MmHh]*)/g)) {
    const n = args.trim().split(/[\s,]+/).map(Number)
    if (op === 'M') { x = n[0]; y = n[1] } else if (op === 'm') { x += n[0]; y += n[1] } else {
      const run = op === 'h' ? n[0] : n[0] - x
      const row = rows[Math.floor(y) - margin]
      for (let i = 0; i < run; i++) {
        if (row === undefined || x - margin + i < 0 || x - margin + i >= size) return null
        row[x - margin + i] = 1
      }
      x += run
    }
  }
  return rows
}

/** True when the SVG draws the QR code of `text` (any quiet zone, any error-correction level). */
export function svgIsQrCodeOf (svg: string, text: string): boolean {
  for (let margin = 0; margin <= 8; margin++) {
    const modules = qrModulesOfSvg(svg, margin)
    if (modules !== null && modules.length > 0 && isQrCodeOf(modules, text)) return true
  }
  return false
}

function isQrCodeOf (modules: number[][], text: string): boolean {
  return (['L', 'M', 'Q', 'H'] as const).some((level) => {
    const qr = QRCode.create(text, { errorCorrectionLevel: level })
    const size = qr.modules.size
    if (size !== modules.length) return false
    for (let r = 0; r < size; r++) {
      for (let c = 0; c < size; c++) if ((qr.modules.get(r, c) ? 1 : 0) !== modules[r][c]) return false
    }
    return true
  })
}

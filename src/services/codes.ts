import { randomUUID } from 'node:crypto'
import type { Kysely } from 'kysely'
import { generateSecret, generateURI, generate as generateTotp, verify as verifyTotp } from 'otplib'
import type { Database } from '../db/types.js'
import { BACKUP_CODE_COST, type Keyring, normalizeCrockford, randomCrockford, randomDigits, slowHash, slowVerify } from '../crypto.js'
import { MethodRepository } from '../repositories/methods.js'
import { BackupCodeRepository } from '../repositories/backup-codes.js'
import { SentCodeRepository, type SentCodeRow } from '../repositories/sent-codes.js'
import { type HandlerServices, type MfaHandler, handlerContext } from '../handlers/base.js'
import type { Mailer, CodeMailContext } from '../mail.js'
import type { AuthKitUser, UserStore } from '../users.js'
import { AuthKitErrors, withRetryAfter } from '../errors.js'

const SENT_CODE_DIGITS = 6

export interface CodeSettings {
  applicationName: string
  resendCooldown: number
  backupCodes: { count: number, length: number, secureHash: boolean }
}

export interface NewBackupCode { id: string, lookup: string, codeHash: string }

/** A backup code just used up, which a request that fails afterwards gives back (rule 8). */
export interface SpentBackupCode { methodId: string, restore (): Promise<void> }

/** The stored form of a user's TOTP secret is bound to the user and method. */
function secretContext (userId: string, method: string): string {
  return `totp:${userId}:${method}`
}

/**
 * Code storage and checks shared by every method: sent codes (hashed, latest
 * only, single use), TOTP (encrypted secret, replay refused), backup codes
 * (hashed, consumed atomically, one slow hash a check).
 */
export class CodeService implements HandlerServices {
  private readonly methods: MethodRepository
  private readonly backupCodes: BackupCodeRepository
  private readonly sentCodes: SentCodeRepository

  constructor (
    db: Kysely<Database>,
    private readonly keyring: Keyring,
    private readonly settings: CodeSettings,
    private readonly users: UserStore<any>,
    private readonly mailer: Mailer | null,
    private readonly now: () => number,
  ) {
    this.methods = new MethodRepository(db)
    this.backupCodes = new BackupCodeRepository(db)
    this.sentCodes = new SentCodeRepository(db)
  }

  get applicationName (): string { return this.settings.applicationName }

  emailOf (user: AuthKitUser): string | null {
    const address = this.users.emailOf(user)
    return typeof address === 'string' && address.includes('@') ? address : null
  }

  async sendMail (context: CodeMailContext): Promise<void> {
    if (this.mailer === null) throw new Error('fastify-auth-kit: email.transport is not configured')
    await this.mailer.sendCode(context)
  }

  // --- TOTP -----------------------------------------------------------------

  newTotpSecret (userId: string, method: string): string {
    return this.keyring.encrypt(generateSecret({ length: 20 }), secretContext(userId, method))
  }

  private async secretOf (handler: MfaHandler): Promise<{ secret: string, sealed: string, methodId: string }> {
    const { userId, methodId, sealedSecret } = handlerContext(handler)
    // A method being created has no row yet: its secret travels in the context.
    let sealed = sealedSecret
    if (typeof sealed !== 'string') {
      const row = await this.methods.find(userId, handler.method.name)
      if (row === undefined || row.secret === null) throw new Error(`fastify-auth-kit: method "${handler.method.name}" has no TOTP secret`)
      sealed = row.secret
    }
    return { secret: this.keyring.decrypt(sealed, secretContext(userId, handler.method.name)), sealed, methodId }
  }

  async currentTotp (handler: MfaHandler): Promise<string> {
    const { secret } = await this.secretOf(handler)
    return generateTotp({ secret, period: handler.settings.totpInterval, epoch: Math.floor(this.now() / 1000) })
  }

  async checkTotp (handler: MfaHandler, code: string): Promise<boolean> {
    if (!/^[0-9]{6}$/.test(code)) return false
    let stored: Awaited<ReturnType<CodeService['secretOf']>>
    try {
      stored = await this.secretOf(handler)
    } catch {
      // Sealed under a key no longer in `secret`: no code can match it.
      return false
    }
    const { secret, sealed, methodId } = stored
    const period = handler.settings.totpInterval
    const result = await verifyTotp({
      secret, token: code, period, epoch: Math.floor(this.now() / 1000), epochTolerance: handler.settings.totpValidWindow * period,
    })
    if (!result.valid) return false
    // Each step is good once per method, on any route, in any process.
    if (!(await this.methods.advanceTotpStep(methodId, (result as { timeStep: number }).timeStep))) return false
    // Key rotation: a secret sealed under an older key moves to the newest on use,
    // so the older key can be retired once users have logged in.
    if (!this.keyring.sealedWithCurrent(sealed)) {
      await this.methods.resealSecret(methodId, sealed, this.keyring.encrypt(secret, secretContext(handlerContext(handler).userId, handler.method.name)))
    }
    return true
  }

  async totpLink (handler: MfaHandler): Promise<string> {
    const { secret } = await this.secretOf(handler)
    const label = String((handler.user as Record<string, unknown>).username ?? this.users.emailOf(handler.user) ?? handler.user.id)
    const period = handler.settings.totpInterval
    return generateURI({ issuer: this.settings.applicationName, label, secret, period })
  }

  // --- Sent codes -------------------------------------------------------------

  async issueSentCode (handler: MfaHandler): Promise<string> {
    const { userId } = handlerContext(handler)
    const code = randomDigits(SENT_CODE_DIGITS)
    const now = this.now()
    const expiresAt = now + handler.settings.codeExpiry * 1000
    const row = await this.sentCodes.find(userId, handler.method.name)
    if (row !== undefined) await this.sentCodes.store(row.id, this.keyring.hash(code), expiresAt)
    else if (!(await this.sentCodes.tryInsert({ id: randomUUID(), userId, method: handler.method.name, codeHash: this.keyring.hash(code), expiresAt, sentAt: now }))) {
      const raced = await this.sentCodes.find(userId, handler.method.name)
      if (raced !== undefined) await this.sentCodes.store(raced.id, this.keyring.hash(code), expiresAt)
    }
    return code
  }

  async checkSentCode (handler: MfaHandler, code: string): Promise<boolean> {
    if (!/^[0-9]{6}$/.test(code)) return false
    const row = await this.sentCodes.find(handlerContext(handler).userId, handler.method.name)
    if (row === undefined || row.codeHash === null || row.expiresAt <= this.now()) return false
    if (!this.keyring.matches(code, row.codeHash)) return false
    return this.sentCodes.consume(row.id, row.codeHash, this.now())
  }

  /**
   * Sends a code for a dispatching method, keeping `resendCooldown`. Within
   * the cooldown, `strict` callers (resend, send) get 429 and others go on
   * without sending. A failed delivery puts everything back as it was.
   */
  async dispatch (handler: MfaHandler, strict: boolean, send: () => Promise<void> = async () => handler.sendCode()): Promise<boolean> {
    const { userId } = handlerContext(handler)
    const method = handler.method.name
    const now = this.now()
    const cooldown = this.settings.resendCooldown * 1000
    let previous: SentCodeRow | undefined = await this.sentCodes.find(userId, method)
    let created: string | undefined
    if (previous === undefined) {
      const id = randomUUID()
      if (await this.sentCodes.tryInsert({ id, userId, method, codeHash: null, expiresAt: 0, sentAt: now })) created = id
      else previous = await this.sentCodes.find(userId, method)
    }
    if (created === undefined) {
      if (previous === undefined) throw new Error('fastify-auth-kit: sent-code row vanished')
      const waited = now - previous.sentAt
      const claimed = waited >= cooldown && await this.sentCodes.claimSend(previous.id, previous.sentAt, now)
      if (!claimed) {
        if (!strict) return false
        throw withRetryAfter(new AuthKitErrors.ResendTooSoon(), Math.max(1, (cooldown - waited) / 1000))
      }
    }
    try {
      await send()
    } catch (err) {
      if (created !== undefined) await this.sentCodes.remove(created)
      else if (previous !== undefined) await this.sentCodes.restore(previous)
      const status = (err as { statusCode?: unknown } | null)?.statusCode
      if (typeof status === 'number' && status < 500) throw err
      throw Object.assign(new AuthKitErrors.DeliveryFailed(), { deliveryError: err })
    }
    return true
  }

  /**
   * A deleted method's last code stops working, but the time it was sent is
   * kept: deleting and re-creating a method must not skip the cooldown.
   */
  async forgetSentCodes (userId: string, method: string): Promise<void> {
    await this.sentCodes.invalidate(userId, method)
  }

  // --- Backup codes -------------------------------------------------------------

  private lookupsOf (userId: string, normalized: string): string[] {
    // A short tag of a keyed hash: finds the one candidate row without
    // revealing the code, so a check costs one slow hash at most.
    return this.keyring.hashes(`backup:${userId}:${normalized}`).map((h) => h.slice(0, 12))
  }

  /** Fresh codes for display and their stored form; tags unique among the user's codes. */
  async newBackupCodes (userId: string): Promise<{ shown: string[], stored: NewBackupCode[] }> {
    const { count, length, secureHash } = this.settings.backupCodes
    const taken = await this.backupCodes.lookupsOfUser(userId)
    const shown: string[] = []
    const stored: NewBackupCode[] = []
    while (shown.length < count) {
      const code = randomCrockford(length)
      const lookup = this.lookupsOf(userId, code)[0]
      if (taken.has(lookup)) continue
      taken.add(lookup)
      const codeHash = secureHash ? await slowHash(code, BACKUP_CODE_COST) : `hmac$${this.keyring.hash(`backup-code:${userId}:${code}`)}`
      stored.push({ id: randomUUID(), lookup, codeHash })
      shown.push(code.match(/.{1,4}/g)!.join('-'))
    }
    return { shown, stored }
  }

  /** Consumes a backup code of one of `methodIds`: the method it belonged to, and how to give it back. */
  async consumeBackupCode (userId: string, methodIds: string[], input: string): Promise<SpentBackupCode | null> {
    const normalized = normalizeCrockford(input)
    if (normalized === null || normalized.length !== this.settings.backupCodes.length) return null
    const [candidate] = await this.backupCodes.candidates(methodIds, this.lookupsOf(userId, normalized))
    if (candidate === undefined) return null
    const ok = candidate.codeHash.startsWith('hmac$')
      ? this.keyring.matches(`backup-code:${userId}:${normalized}`, candidate.codeHash.slice(5))
      : await slowVerify(normalized, candidate.codeHash)
    if (!ok || !(await this.backupCodes.consume(candidate.id))) return null
    return { methodId: candidate.methodId, restore: async () => this.backupCodes.restore(candidate, userId, this.now()) }
  }

  async checkBackupCode (handler: MfaHandler, code: string): Promise<boolean> {
    const { userId, methodId } = handlerContext(handler)
    return (await this.consumeBackupCode(userId, [methodId], code)) !== null
  }
}


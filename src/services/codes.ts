import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Kysely } from 'kysely'
import { AlgorithmUnsupportedError, type CryptoPlugin, generateSecret, generateURI, generateSync as generateTotp, verifySync as verifyTotp } from 'otplib'
import type { Database } from '../db/types.js'
import { BACKUP_CODE_COST, type Keyring, normalizeCrockford, randomCrockford, randomDigits, randomToken, slowHash, slowVerify, newId } from '../crypto.js'
import { MethodRepository } from '../repositories/methods.js'
import { BackupCodeRepository } from '../repositories/backup-codes.js'
import { SentCodeRepository, type SentCodeRow } from '../repositories/sent-codes.js'
import { ChallengeRepository } from '../repositories/challenges.js'
import { CredentialRepository } from '../repositories/credentials.js'
import { type ChallengeScope, type HandlerServices, type MfaHandler, type StoredCredential, type WebAuthnSettings, handlerContext } from '../handlers/base.js'
import type { Mailer, CodeMailContext } from '../mail.js'
import { plainMailbox } from '../mail.js'
import type { AuthKitUser, UserStore } from '../users.js'
import { AuthKitErrors, retryLater } from '../errors.js'
import { type Repositories, repositoriesOf } from '../repositories/index.js'
import type { ResolvedOptions } from '../options.js'

/** Digits of a sent code and of a TOTP (RFC 6238 with 6 digits). */
export const OTP_DIGITS = 6
const OTP_PATTERN = new RegExp(`^[0-9]{${OTP_DIGITS}}$`)

/** `ephemeralTokenExpiry` is how long a login attempt, and so its challenge, lives. */
export type CodeSettings = Pick<ResolvedOptions['mfa'], 'applicationName' | 'resendCooldown' | 'ephemeralTokenExpiry' | 'backupCodes'>

export interface NewBackupCode { id: string, lookup: string, codeHash: string }

/** How a send went: sent now, skipped inside the cooldown, or skipped because another send is under way. */
export type DispatchResult = 'sent' | 'cooldown' | 'in-flight'

export interface CodeServiceProps {
  db: Kysely<Database>
  /** Over `db`. */
  repositories: Pick<Repositories, 'methods' | 'backupCodes' | 'sentCodes' | 'challenges' | 'credentials'>
  keyring: Keyring
  settings: CodeSettings
  users: UserStore<any>
  mailer: Mailer | null
  /** The relying party of passkeys, or null when `webauthn` is not set. */
  webauthn: WebAuthnSettings | null
  now: () => number
}

/**
 * Rule 3: code input ignores spaces, dashes and surrounding white space
 * (`123 456` is `123456`), for every kind of code.
 */
export function normalizeOtp (input: string): string {
  return input.replace(/[\s-]/g, '')
}

/**
 * Handlers whose latest TOTP check was refused only because the code's step
 * (or a later one) had already been accepted for the method: the code itself
 * was right. Read through `matchedSpentStep`, so a route can say "already used".
 */
const spentStepChecks = new WeakSet<MfaHandler>()

/**
 * Whether `handler`'s latest `checkTotp` matched a step of the window that was
 * already accepted for the method, or that is older than one that was (rule 3).
 * False after any other outcome, and for methods that send codes.
 */
export function matchedSpentStep (handler: MfaHandler): boolean {
  return spentStepChecks.has(handler)
}

/** Random bytes of a challenge (WebAuthn wants at least 16). */
const CHALLENGE_BYTES = 32

/** The stored key of a challenge scope. */
function scopeKey (scope: ChallengeScope): string {
  return scope.kind === 'login' ? `login:${scope.attemptId}` : scope.kind
}

/** The unique key of a credential id: its SHA-256, hex (ids can be too long to index). */
function credentialKey (credentialId: string): string {
  return createHash('sha256').update(credentialId, 'utf8').digest('hex')
}

/**
 * otplib's HMAC (RFC 2104) and constant-time comparison through node:crypto,
 * in native code: its default plugin hashes in JavaScript, which made a TOTP
 * check cost several times the three HMACs it needs. Synchronous, so the
 * checks run with otplib's `*Sync` functions.
 */
const nodeCrypto: CryptoPlugin = {
  name: 'node',
  algorithms: ['sha1', 'sha256', 'sha512'],
  hmac (algorithm, key, data) {
    const name = String(algorithm).toLowerCase().replace(/^sha[-_]?/, 'sha')
    if (name !== 'sha1' && name !== 'sha256' && name !== 'sha512') throw new AlgorithmUnsupportedError(String(algorithm))
    return createHmac(name, key).update(data).digest()
  },
  randomBytes (length) {
    return randomBytes(length)
  },
  constantTimeEqual (a, b) {
    const x = typeof a === 'string' ? Buffer.from(a) : a
    const y = typeof b === 'string' ? Buffer.from(b) : b
    return x.length === y.length && timingSafeEqual(x, y)
  },
}

/** The stored form of a user's TOTP secret is bound to the user and method. */
function secretContext (userId: string, method: string): string {
  return `totp:${userId}:${method}`
}

/**
 * The account name of an otpauth label (Key URI format): a colon separates
 * issuer and account, so one in the name is replaced and the decoded label
 * holds exactly one (rule 3).
 */
export function otpauthAccountName (name: string): string {
  return name.replace(/:/g, '_')
}

/**
 * Code storage and checks shared by every method: sent codes (hashed, latest
 * only, single use), TOTP (encrypted secret, each step once), backup codes
 * (hashed, one slow hash a check). One instance per database handle: `on(trx)`
 * gives the same service inside a transaction, so a check and the change it
 * allows commit or roll back together.
 */
export class CodeService implements HandlerServices {
  private readonly methods: MethodRepository
  private readonly backupCodes: BackupCodeRepository
  private readonly sentCodes: SentCodeRepository
  private readonly challenges: ChallengeRepository
  private readonly credentials: CredentialRepository

  constructor (private readonly props: CodeServiceProps) {
    this.methods = props.repositories.methods
    this.backupCodes = props.repositories.backupCodes
    this.sentCodes = props.repositories.sentCodes
    this.challenges = props.repositories.challenges
    this.credentials = props.repositories.credentials
  }

  /** The same service over another handle (a transaction). */
  on (db: Kysely<Database>): CodeService {
    return db === this.props.db ? this : new CodeService({ ...this.props, db, repositories: repositoriesOf(db) })
  }

  get applicationName (): string { return this.props.settings.applicationName }
  get resendCooldown (): number { return this.props.settings.resendCooldown }
  get webauthn (): WebAuthnSettings | null { return this.props.webauthn }
  get challengeExpiry (): number { return this.props.settings.ephemeralTokenExpiry }

  /** One plain mailbox from the user store, or null (rule 7). */
  emailOf (user: AuthKitUser): string | null {
    return plainMailbox(this.props.users.emailOf(user))
  }

  async sendMail (context: CodeMailContext): Promise<void> {
    if (this.props.mailer === null) throw new Error('fastify-auth-kit: email.transport is not configured')
    await this.props.mailer.sendCode(context)
  }

  // --- TOTP (RFC 6238) ------------------------------------------------------

  newTotpSecret (userId: string, method: string): string {
    return this.props.keyring.encrypt(generateSecret({ length: 20 }), secretContext(userId, method))
  }

  private async secretOf (handler: MfaHandler): Promise<{ secret: string, sealed: string, methodId: string }> {
    const { userId, methodId, sealedSecret } = handlerContext(handler)
    // The secret travels in the context (read with the row, or made for a
    // method being created, which has no row yet); otherwise it is read here.
    let sealed = sealedSecret
    if (typeof sealed !== 'string') {
      const row = await this.methods.find(userId, handler.method.name)
      if (row === undefined || row.secret === null) throw new Error(`fastify-auth-kit: method "${handler.method.name}" has no TOTP secret`)
      sealed = row.secret
    }
    return { secret: this.props.keyring.decrypt(sealed, secretContext(userId, handler.method.name)), sealed, methodId }
  }

  async currentTotp (handler: MfaHandler): Promise<string> {
    const { secret } = await this.secretOf(handler)
    return generateTotp({ secret, period: handler.settings.totpInterval, epoch: Math.floor(this.props.now() / 1000), crypto: nodeCrypto })
  }

  async checkTotp (handler: MfaHandler, input: string): Promise<boolean> {
    spentStepChecks.delete(handler)
    const code = normalizeOtp(input)
    if (!OTP_PATTERN.test(code)) return false
    let stored: Awaited<ReturnType<CodeService['secretOf']>>
    try {
      stored = await this.secretOf(handler)
    } catch {
      // Sealed under a key no longer in `secret`: no code can match it.
      return false
    }
    const { secret, sealed, methodId } = stored
    const period = handler.settings.totpInterval
    const result = verifyTotp({
      secret, token: code, period, epoch: Math.floor(this.props.now() / 1000), epochTolerance: handler.settings.totpValidWindow * period, crypto: nodeCrypto,
    })
    if (!result.valid) return false
    // Each step is good once per method, on any route, in any process.
    if (!(await this.methods.advanceTotpStep(methodId, (result as { timeStep: number }).timeStep))) {
      spentStepChecks.add(handler)
      return false
    }
    // Key rotation: a secret sealed under an older key moves to the newest on use,
    // so the older key can be retired once users have logged in.
    if (!this.props.keyring.sealedWithCurrent(sealed)) {
      await this.methods.resealSecret(methodId, sealed, this.props.keyring.encrypt(secret, secretContext(handlerContext(handler).userId, handler.method.name)))
    }
    return true
  }

  async totpLink (handler: MfaHandler): Promise<string> {
    const { secret } = await this.secretOf(handler)
    const name = String((handler.user as Record<string, unknown>).username ?? this.props.users.emailOf(handler.user) ?? handler.user.id)
    return generateURI({ issuer: this.props.settings.applicationName, label: otpauthAccountName(name), secret, period: handler.settings.totpInterval })
  }

  // --- Sent codes -------------------------------------------------------------

  async issueSentCode (handler: MfaHandler): Promise<string> {
    const { userId } = handlerContext(handler)
    const code = randomDigits(OTP_DIGITS)
    const now = this.props.now()
    const expiresAt = now + handler.settings.codeExpiry * 1000
    const hash = this.props.keyring.hash(code)
    const row = await this.sentCodes.find(userId, handler.method.name)
    if (row !== undefined) await this.sentCodes.store(row.id, hash, expiresAt)
    else if (!(await this.sentCodes.tryInsert({ id: newId(), userId, method: handler.method.name, codeHash: hash, expiresAt, sentAt: now, pendingUntil: null }))) {
      const raced = await this.sentCodes.find(userId, handler.method.name)
      if (raced !== undefined) await this.sentCodes.store(raced.id, hash, expiresAt)
    }
    return code
  }

  async checkSentCode (handler: MfaHandler, input: string): Promise<boolean> {
    const code = normalizeOtp(input)
    if (!OTP_PATTERN.test(code)) return false
    const row = await this.sentCodes.find(handlerContext(handler).userId, handler.method.name)
    const now = this.props.now()
    if (row === undefined || row.codeHash === null || row.expiresAt <= now) return false
    if (!this.props.keyring.matches(code, row.codeHash)) return false
    return this.sentCodes.consume(row.id, row.codeHash, now)
  }

  /**
   * Sends a code for a dispatching method, keeping `resendCooldown`. Within
   * the cooldown (or while another send is under way), `strict` callers
   * (resend, send) get 429 `AUTH_KIT_RESEND_TOO_SOON` and others go on without
   * sending. A failed delivery puts everything back as it was and throws 503
   * `AUTH_KIT_DELIVERY_FAILED` (or the handler's own 4xx). A claim whose sender
   * died before delivery holds the cooldown only until `deliveryLease` ends.
   */
  async dispatch (handler: MfaHandler, strict: boolean, send: () => Promise<void> = async () => handler.sendCode()): Promise<DispatchResult> {
    const { userId } = handlerContext(handler)
    const method = handler.method.name
    const now = this.props.now()
    const cooldown = this.props.settings.resendCooldown * 1000
    const pendingUntil = now + this.deliveryLease
    let previous: SentCodeRow | undefined = await this.sentCodes.find(userId, method)
    let created: string | undefined
    if (previous === undefined) {
      const id = newId()
      if (await this.sentCodes.tryInsert({ id, userId, method, codeHash: null, expiresAt: 0, sentAt: now, pendingUntil })) created = id
      else previous = await this.sentCodes.find(userId, method)
    }
    if (created === undefined) {
      if (previous === undefined) throw new Error('fastify-auth-kit: sent-code row vanished')
      const inFlight = previous.pendingUntil !== null && previous.pendingUntil > now
      const abandoned = previous.pendingUntil !== null && previous.pendingUntil <= now
      const waited = now - previous.sentAt
      const free = !inFlight && (abandoned || waited >= cooldown)
      if (!free || !(await this.sentCodes.claimSend(previous.id, previous.sentAt, now, pendingUntil))) {
        const wait = inFlight ? previous.pendingUntil! - now : cooldown - waited
        if (!strict) return inFlight ? 'in-flight' : 'cooldown'
        throw retryLater(AuthKitErrors.ResendTooSoon, wait / 1000)
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
    await this.sentCodes.delivered(created ?? previous!.id, now)
    return 'sent'
  }

  /** Milliseconds a send may take before its claim on the cooldown lapses. */
  private get deliveryLease (): number {
    return (this.props.mailer?.timeoutMs ?? 10_000) + 5_000
  }

  /**
   * A deleted method's last code stops working, but the time it was sent is
   * kept: deleting and re-creating a method must not skip the cooldown.
   */
  async forgetSentCodes (userId: string, method: string): Promise<void> {
    await this.sentCodes.invalidate(userId, method)
  }

  // --- Challenges and credentials (SPEC section 10) ------------------------------

  private challengeHash (challenge: string): string {
    return this.props.keyring.hash(`challenge:${challenge}`)
  }

  async issueChallenge (handler: MfaHandler, scope: ChallengeScope): Promise<string> {
    const { userId, methodId } = handlerContext(handler)
    const now = this.props.now()
    const challenge = randomToken(CHALLENGE_BYTES)
    // Each new challenge clears the user's expired ones, so the table stays small without a job.
    await this.challenges.purgeExpired(userId, now)
    const row = { id: newId(), userId, methodId, scope: scopeKey(scope), challengeHash: this.challengeHash(challenge), expiresAt: now + this.challengeExpiry * 1000 }
    // Two issues for one scope at once: the one written last is the live one.
    if (!(await this.challenges.replace(row, now)) && !(await this.challenges.replace(row, now))) {
      throw new Error('fastify-auth-kit: could not store a challenge')
    }
    return challenge
  }

  /** The live row of `scope` whose challenge is `challenge`, or undefined. */
  private async liveChallenge (handler: MfaHandler, scope: ChallengeScope, challenge: string) {
    if (typeof challenge !== 'string' || challenge === '') return undefined
    const row = await this.challenges.find(handlerContext(handler).methodId, scopeKey(scope))
    if (row === undefined || row.expiresAt <= this.props.now()) return undefined
    return this.props.keyring.matches(`challenge:${challenge}`, row.challengeHash) ? row : undefined
  }

  async challengeIsLive (handler: MfaHandler, scope: ChallengeScope, challenge: string): Promise<boolean> {
    return (await this.liveChallenge(handler, scope, challenge)) !== undefined
  }

  async consumeChallenge (handler: MfaHandler, scope: ChallengeScope, challenge: string): Promise<boolean> {
    const row = await this.liveChallenge(handler, scope, challenge)
    return row !== undefined && this.challenges.consume(row.id, row.challengeHash, this.props.now())
  }

  async findCredential (handler: MfaHandler): Promise<StoredCredential | null> {
    const row = await this.credentials.findByMethod(handlerContext(handler).methodId)
    return row === undefined ? null : { id: row.credentialId, publicKey: row.publicKey, counter: row.signCount, transports: row.transports }
  }

  async saveCredential (handler: MfaHandler, credential: StoredCredential): Promise<boolean> {
    const { userId, methodId } = handlerContext(handler)
    const key = credentialKey(credential.id)
    const owner = await this.credentials.methodOfKey(key)
    if (owner !== undefined && owner !== methodId) return false
    await this.credentials.deleteForMethod(methodId)
    // Another user's confirm, under another user's lock, may store the same id
    // between the look above and this insert: the unique key refuses the later
    // one, which is then the same wrong credential as above (no 500).
    return this.credentials.insertUnlessTaken({
      id: newId(), methodId, userId, credentialKey: key, credentialId: credential.id, publicKey: credential.publicKey,
      signCount: credential.counter, transports: credential.transports, createdAt: this.props.now(),
    })
  }

  async recordCredentialUse (handler: MfaHandler, previous: number, counter: number): Promise<boolean> {
    return this.credentials.recordUse(handlerContext(handler).methodId, previous, counter, this.props.now())
  }

  // --- Backup codes (rule 4) --------------------------------------------------

  private lookupsOf (userId: string, normalized: string): string[] {
    // A short tag of a keyed hash: finds the one candidate row without
    // revealing the code, so a check costs one slow hash at most.
    return this.props.keyring.hashes(`backup:${userId}:${normalized}`).map((h) => h.slice(0, 12))
  }

  /** Fresh codes for display and their stored form; tags unique among the user's codes. */
  async newBackupCodes (userId: string): Promise<{ shown: string[], stored: NewBackupCode[] }> {
    const { count, length, secureHash } = this.props.settings.backupCodes
    const taken = await this.backupCodes.lookupsOfUser(userId)
    const shown: string[] = []
    const stored: NewBackupCode[] = []
    while (shown.length < count) {
      const code = randomCrockford(length)
      const lookup = this.lookupsOf(userId, code)[0]
      if (taken.has(lookup)) continue
      taken.add(lookup)
      const codeHash = secureHash ? await slowHash(code, BACKUP_CODE_COST) : `hmac$${this.props.keyring.hash(`backup-code:${userId}:${code}`)}`
      stored.push({ id: newId(), lookup, codeHash })
      shown.push(code.match(/.{1,4}/g)!.join('-'))
    }
    return { shown, stored }
  }

  /** Uses up a backup code of one of `methodIds`; the id of the method it belonged to, or null. */
  async consumeBackupCode (userId: string, methodIds: string[], input: string): Promise<string | null> {
    const normalized = normalizeCrockford(input)
    if (normalized === null || normalized.length !== this.props.settings.backupCodes.length) return null
    const [candidate] = await this.backupCodes.candidates(methodIds, this.lookupsOf(userId, normalized))
    if (candidate === undefined) return null
    const ok = candidate.codeHash.startsWith('hmac$')
      ? this.props.keyring.matches(`backup-code:${userId}:${normalized}`, candidate.codeHash.slice(5))
      : await slowVerify(normalized, candidate.codeHash)
    if (!ok || !(await this.backupCodes.consume(candidate.id))) return null
    return candidate.methodId
  }

  async checkBackupCode (handler: MfaHandler, code: string): Promise<boolean> {
    const { userId, methodId } = handlerContext(handler)
    return (await this.consumeBackupCode(userId, [methodId], code)) !== null
  }
}

import { Type, type TSchema } from '@sinclair/typebox'
import type { AuthKitUser } from '../users.js'
import type { CodeMailContext } from '../mail.js'
import { AuthKitErrors, retryLater } from '../errors.js'

/** What a handler instance knows of the method it serves. */
export interface MethodState {
  name: string
  isActive: boolean
  isPrimary: boolean
}

/**
 * Which step a challenge serves, so that one issued for one step never passes
 * another (SPEC section 10): the method's setup (`POST /mfa/`, then
 * `/mfa/confirm/`), one login attempt, or the method routes and step-up of a
 * logged-in user (after `POST /mfa/send/`).
 */
export type ChallengeScope = { kind: 'setup' } | { kind: 'login', attemptId: string } | { kind: 'method' }

/**
 * What a request offers as proof of a method: a typed `code` (TOTP, a sent
 * code or a backup code), or a `credential`, the object a challenge–response
 * method checks (a passkey's WebAuthn response).
 */
export type FactorResponse = { code: string } | { credential: unknown }

/**
 * What a dispatch gave the user, added to the route's answer: nothing (a code
 * was sent, or the method sends nothing), or a `challenge` to answer with a
 * credential (a passkey's `PublicKeyCredentialRequestOptionsJSON`). `detail`
 * replaces the route's wording where the usual one ("code sent") is untrue:
 * change-method and resend answer it, login step 1 does not.
 */
export interface Dispatch {
  detail?: string
  challenge?: unknown
}

/**
 * The `detail` of a dispatch that sent nothing because a code went out less
 * than `mfa.resendCooldown` ago (or is on its way): the user waits for, or
 * uses, that one.
 */
export const NOT_RESENT = 'No new code was sent: one was sent moments ago, and the latest code sent still works.'

/**
 * The public part of a challenge–response method's credential, as the plugin
 * stores it (one per method of a user): never a secret.
 */
export interface StoredCredential {
  /** The credential id, base64url (WebAuthn: at most 1023 bytes). */
  id: string
  /** The public key, base64url (WebAuthn: a COSE key). */
  publicKey: string
  /** The authenticator's signature counter after the last accepted use (0: it keeps none). */
  counter: number
  /** Transport hints the authenticator reported (`usb`, `internal`, …). */
  transports: string[]
}

/** The relying party of passkeys: the `webauthn` option (WebAuthn Level 3, section 5.1.2 and 13.4.9). */
export interface WebAuthnSettings {
  /** The domain credentials are scoped to (`example.com`): the origins' host or a parent of it. */
  rpID: string
  /** The name authenticators show. */
  rpName: string
  /** Every origin a credential may be used from (`https://app.example.com`). */
  origins: string[]
}

/**
 * The plugin's side of a handler: code storage and checks that must hold
 * whatever the method (hashing, expiry, single use, replay). Handlers reach it
 * only through the methods of MfaHandler.
 */
export interface HandlerServices {
  /** A dispatching method: issues, stores (hashed) and returns a fresh code. */
  issueSentCode (handler: MfaHandler): Promise<string>
  /** A dispatching method: the latest code sent, unexpired, used once. */
  checkSentCode (handler: MfaHandler, code: string): Promise<boolean>
  /** A TOTP method: a fresh secret, sealed for storage. */
  newTotpSecret (userId: string, method: string): string
  /** A TOTP method: the code of the current step. */
  currentTotp (handler: MfaHandler): Promise<string>
  /** A TOTP method: RFC 6238 within the window, each step accepted once. */
  checkTotp (handler: MfaHandler, code: string): Promise<boolean>
  /** One of this method's backup codes, consumed if it matches. */
  checkBackupCode (handler: MfaHandler, code: string): Promise<boolean>
  /** The otpauth link of a TOTP method. */
  totpLink (handler: MfaHandler): Promise<string>
  /**
   * Runs `send` (default: `handler.sendCode()`) under `mfa.resendCooldown`:
   * within it, `strict` callers get 429 and others go on without sending.
   */
  dispatch (handler: MfaHandler, strict: boolean, send?: () => Promise<void>): Promise<'sent' | 'cooldown' | 'in-flight'>
  /** Seconds between two codes sent for one method of one user. */
  resendCooldown: number
  /** A fresh random challenge for `scope`, stored hashed; it replaces the scope's previous one. */
  issueChallenge (handler: MfaHandler, scope: ChallengeScope): Promise<string>
  /** Whether `challenge` is the live (unexpired, unused) challenge of `scope`. */
  challengeIsLive (handler: MfaHandler, scope: ChallengeScope, challenge: string): Promise<boolean>
  /** Uses the live challenge of `scope` up, if it is `challenge`: true for exactly one caller. */
  consumeChallenge (handler: MfaHandler, scope: ChallengeScope, challenge: string): Promise<boolean>
  findCredential (handler: MfaHandler): Promise<StoredCredential | null>
  /** Stores the method's credential (replacing one it had); false if the id is registered to another method. */
  saveCredential (handler: MfaHandler, credential: StoredCredential): Promise<boolean>
  /** Records an accepted use: the new counter, if the stored one is still `previous`. */
  recordCredentialUse (handler: MfaHandler, previous: number, counter: number): Promise<boolean>
  /** The `webauthn` option, or null when it is not set. */
  webauthn: WebAuthnSettings | null
  /** Seconds a challenge lives (`mfa.ephemeralTokenExpiry`). */
  challengeExpiry: number
  applicationName: string
  /** Where codes for this user go by email, or null. */
  emailOf (user: AuthKitUser): string | null
  /** Mails a code through `email.transport`. */
  sendMail (context: CodeMailContext): Promise<void>
}

export interface HandlerContext {
  services: HandlerServices
  userId: string
  methodId: string
  settings: HandlerSettings
  /** The sealed TOTP secret, as read with the method's row (or made for a method being created, which has no row yet). */
  sealedSecret?: string | null
}

/** Class-level settings with the plugin's defaults filled in. */
export interface HandlerSettings {
  totpInterval: number
  totpValidWindow: number
  codeExpiry: number
}

// Read and written through MfaHandler's private field (set in its static block):
// the context stays out of reach of handler subclasses, as a WeakMap kept it,
// without a process-wide WeakMap that gains an entry on every request.
let readContext: (handler: MfaHandler) => HandlerContext | undefined
let writeContext: (handler: MfaHandler, context: HandlerContext) => void

/** @internal The plugin binds each instance it makes to its services. */
export function bindHandler (handler: MfaHandler, context: HandlerContext): void {
  writeContext(handler, context)
}

/** @internal */
export function handlerContext (handler: MfaHandler): HandlerContext {
  const context = readContext(handler)
  if (context === undefined) throw new Error(`fastify-auth-kit: ${handler.constructor.name} was not made by the plugin; get one from app.authKit.handlerFor()`)
  return context
}

/**
 * A method of second factor. Subclass it, set NAME, and list the class in
 * `mfa.handlers`; methods that send codes implement `sendCode()`.
 */
export abstract class MfaHandler<U extends AuthKitUser = AuthKitUser> {
  /**
   * The method's name in the API (`method` in bodies, `name` in `GET /mfa/`):
   * lower-case letters, digits and underscores, starting with a letter, at
   * most 64 characters, unique within `mfa.handlers`. Required: registration
   * throws `AuthKitOptionsError` without it.
   */
  static NAME: string = ''
  /** `display_name` in `GET /mfa/` and notification mails. @default NAME with spaces, upper case (`phone_call` → `PHONE CALL`) */
  declare static DISPLAY_NAME: string
  /** True for a method that sends a code (email, SMS: `sendCode()`), false for a TOTP one (an authenticator app). @default true */
  static REQUIRES_DISPATCH: boolean = true
  /** `setup_data.detail` of the default `initializeMethod()`. @default 'A verification code has been sent.' */
  static SETUP_RESPONSE_MESSAGE: string = 'A verification code has been sent.'
  /** Seconds of one TOTP step (RFC 6238 `X`), 1 to 86400; methods that do not send. @default mfa.totpInterval (30) */
  static TOTP_INTERVAL?: number
  /** TOTP steps accepted either side of now, 0 to 10; methods that do not send. @default mfa.totpValidWindow (1) */
  static TOTP_VALID_WINDOW?: number
  /** Seconds a sent code lives, 1 to 86400; methods that send. @default mfa.emailCodeExpiry (600) */
  static CODE_EXPIRY?: number
  /**
   * TypeBox schema of what `initializeMethod()` returns (`setup_data` of
   * `POST /mfa/`): it drives the OpenAPI document and the serializer, and a
   * result that does not match it fails the create before anything is stored.
   * @default Type.Object({ detail: Type.String() })
   */
  static setupDataSchema: TSchema = Type.Object({ detail: Type.String() })
  /**
   * A challenge–response method: the shape of `challenge` in the answers of
   * login step 1, change-method and resend. Setting it adds the field to
   * those answers and to the OpenAPI document.
   */
  static challengeSchema?: TSchema
  /** The shape of `challenge` in the answer of `POST /mfa/send/` (default: `challengeSchema`). */
  static sendChallengeSchema?: TSchema
  /**
   * A challenge–response method: the shape of `credential` in the bodies of
   * login verify, step-up and the method routes that take a code.
   */
  static credentialSchema?: TSchema
  /** A challenge–response method: the shape of `credential` at `POST /mfa/confirm/`. */
  static setupCredentialSchema?: TSchema

  readonly user: U
  readonly method: MethodState
  #context: HandlerContext | undefined

  static {
    readContext = (handler) => (#context in handler ? handler.#context : undefined)
    writeContext = (handler, context) => { handler.#context = context }
  }

  constructor (user: U, method: MethodState) {
    this.user = user
    this.method = method
  }

  /** The class, for reading its static settings from an instance. */
  get handlerClass (): MfaHandlerClass {
    return this.constructor as MfaHandlerClass
  }

  /** Settings in force for this method (class values over plugin defaults). */
  get settings (): HandlerSettings {
    return handlerContext(this).settings
  }

  /**
   * A sending method: a fresh one-time code (stored hashed; it replaces the
   * previous one). A TOTP method: the code of the current step.
   */
  async getOtpCode (): Promise<string> {
    const { services } = handlerContext(this)
    return this.handlerClass.REQUIRES_DISPATCH ? services.issueSentCode(this) : services.currentTotp(this)
  }

  /** The method's own code: the latest sent one, or the TOTP of the window. */
  async validateOtpCode (code: string): Promise<boolean> {
    const { services } = handlerContext(this)
    return this.handlerClass.REQUIRES_DISPATCH ? services.checkSentCode(this, code) : services.checkTotp(this, code)
  }

  /**
   * A method that does not send: its otpauth:// link (Key URI format, with
   * the method's TOTP_INTERVAL), for setup data. It holds the secret.
   */
  async getTotpLink (): Promise<string> {
    if (this.handlerClass.REQUIRES_DISPATCH) throw new Error(`fastify-auth-kit: ${this.handlerClass.name} sends codes and has no TOTP secret`)
    return handlerContext(this).services.totpLink(this)
  }

  /** One of this method's backup codes; a match is used up. */
  async validateBackupCode (code: string): Promise<boolean> {
    return handlerContext(this).services.checkBackupCode(this, code)
  }

  /** Own code first, then a backup code. */
  async validateCode (code: string): Promise<boolean> {
    return (await this.validateOtpCode(code)) || (await this.validateBackupCode(code))
  }

  /**
   * A challenge–response method: whether `credential` answers the live
   * challenge of `scope`; a right one uses the challenge up, a wrong one
   * leaves it usable. Default: false (the method takes codes, not credentials).
   * Must not throw for a malformed credential: it is a wrong one.
   */
  async validateCredential (_credential: unknown, _scope: ChallengeScope): Promise<boolean> {
    return false
  }

  /**
   * The method's own proof, as the plugin checks it on every route: a
   * `credential` goes to `validateCredential()`, a `code` to
   * `validateOtpCode()`. Backup codes are the plugin's to check, after this.
   */
  async validateResponse (response: FactorResponse, scope: ChallengeScope): Promise<boolean> {
    return 'credential' in response ? this.validateCredential(response.credential, scope) : this.validateOtpCode(response.code)
  }

  /**
   * SVG markup of a QR code a person scans to set the method up, or null for
   * a method without one (the default). Served by `GET /mfa/qr/` while the
   * method is created and not yet active.
   */
  async qrCodeSvg (): Promise<string | null> {
    return null
  }

  /** Delivers a code. Methods that send override it; the default sends nothing. */
  async sendCode (): Promise<void> {}

  /** Runs when the method is created; its result is `setup_data`. */
  async initializeMethod (): Promise<unknown> {
    if (this.handlerClass.REQUIRES_DISPATCH) await this.sendCode()
    return { detail: this.handlerClass.SETUP_RESPONSE_MESSAGE }
  }

  /**
   * Runs first at `POST /mfa/`, before anything is stored: the secret to store
   * with the method (sealed), or null. Default: a fresh TOTP secret for a
   * method that does not send (encrypted at rest, rule 7); null otherwise.
   */
  async newSecret (): Promise<string | null> {
    if (this.handlerClass.REQUIRES_DISPATCH) return null
    const context = handlerContext(this)
    context.sealedSecret = context.services.newTotpSecret(context.userId, this.method.name)
    return context.sealedSecret
  }

  /**
   * `POST /mfa/`: the method's `setup_data`, before anything is stored.
   * Default: `initializeMethod()`, which for a sending method runs under
   * `mfa.resendCooldown` (within it, `{detail: SETUP_RESPONSE_MESSAGE}` and
   * nothing sent; while another send is under way, 429). A method that
   * dispatches without sending a code (a challenge) overrides it to call
   * `initializeMethod()` alone.
   */
  async setUp (): Promise<unknown> {
    if (!this.handlerClass.REQUIRES_DISPATCH) return this.initializeMethod()
    const { services } = handlerContext(this)
    let setupData: unknown
    const sent = await services.dispatch(this, false, async () => { setupData = await this.initializeMethod() })
    if (sent === 'in-flight') throw retryLater(AuthKitErrors.ResendTooSoon, services.resendCooldown)
    return sent === 'cooldown' ? { detail: this.handlerClass.SETUP_RESPONSE_MESSAGE } : setupData
  }

  /**
   * Starts the method's second step: at login step 1 and change-method (scope
   * `login`), resend (the attempt's scope, `strict`) and `POST /mfa/send/`
   * (scope `method`, `strict`). Its result joins the route's answer.
   * Default: a sending method sends a code under `mfa.resendCooldown` (within
   * it, `strict` callers get 429 `AUTH_KIT_RESEND_TOO_SOON`, others go on,
   * the code sent last still works, and `detail` says so); a TOTP method
   * sends nothing (`strict`: 400 `AUTH_KIT_METHOD_NOT_DISPATCHABLE`). A
   * challenge–response method answers `{ challenge }`.
   */
  async dispatch (_scope: ChallengeScope, options: { strict: boolean }): Promise<Dispatch> {
    if (!this.handlerClass.REQUIRES_DISPATCH) {
      if (options.strict) throw new AuthKitErrors.MethodNotDispatchable()
      return {}
    }
    const sent = await handlerContext(this).services.dispatch(this, options.strict)
    return sent === 'sent' ? {} : { detail: NOT_RESENT }
  }

  /**
   * A challenge–response method: a fresh random challenge (32 bytes from the
   * CSPRNG, base64url) for `scope`, bound to this user's method, stored only
   * as a keyed hash and living `mfa.ephemeralTokenExpiry` seconds. It replaces
   * the scope's previous challenge.
   */
  async issueChallenge (scope: ChallengeScope): Promise<string> {
    return handlerContext(this).services.issueChallenge(this, scope)
  }

  /** Whether `challenge` is the live challenge of `scope` (unexpired, unused); uses nothing up. */
  async challengeIsLive (scope: ChallengeScope, challenge: string): Promise<boolean> {
    return handlerContext(this).services.challengeIsLive(this, scope, challenge)
  }

  /** Uses the challenge of `scope` up after a right answer: true for exactly one caller, in any process. */
  async consumeChallenge (scope: ChallengeScope, challenge: string): Promise<boolean> {
    return handlerContext(this).services.consumeChallenge(this, scope, challenge)
  }

  /** The credential stored for this method, or null. */
  async storedCredential (): Promise<StoredCredential | null> {
    return handlerContext(this).services.findCredential(this)
  }

  /**
   * Stores the method's credential (replacing the one it had). False when the
   * credential id is already registered to another method or user: a
   * credential belongs to one account (WebAuthn Level 3, section 7.1 step 26).
   */
  async storeCredential (credential: StoredCredential): Promise<boolean> {
    return handlerContext(this).services.saveCredential(this, credential)
  }

  /** Records an accepted use of the credential: its new counter, if the stored one is still `previous`. */
  async recordCredentialUse (previous: number, counter: number): Promise<boolean> {
    return handlerContext(this).services.recordCredentialUse(this, previous, counter)
  }
}

// The DISPLAY_NAME default is worked out from the class it is read on, so it
// is an inherited getter, the one place the default is made; a subclass's own
// `static DISPLAY_NAME = …` (or an assignment) shadows it with a plain value.
Object.defineProperty(MfaHandler, 'DISPLAY_NAME', {
  configurable: true,
  get (this: { NAME: string }): string { return this.NAME.replace(/_/g, ' ').toUpperCase() },
  set (this: object, value: string) { Object.defineProperty(this, 'DISPLAY_NAME', { value, writable: true, enumerable: true, configurable: true }) },
})

export type MfaHandlerClass = (abstract new (user: any, method: MethodState) => MfaHandler<any>) & {
  NAME: string
  DISPLAY_NAME: string
  REQUIRES_DISPATCH: boolean
  SETUP_RESPONSE_MESSAGE: string
  TOTP_INTERVAL?: number
  TOTP_VALID_WINDOW?: number
  CODE_EXPIRY?: number
  setupDataSchema: TSchema
  challengeSchema?: TSchema
  sendChallengeSchema?: TSchema
  credentialSchema?: TSchema
  setupCredentialSchema?: TSchema
}

/** The name `GET /mfa/` shows: DISPLAY_NAME, or the default for a class that set it empty. */
export function displayNameOf (cls: MfaHandlerClass): string {
  return typeof cls.DISPLAY_NAME === 'string' && cls.DISPLAY_NAME !== '' ? cls.DISPLAY_NAME : Reflect.get(MfaHandler, 'DISPLAY_NAME', cls) as string
}

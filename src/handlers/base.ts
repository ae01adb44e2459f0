import { Type, type TSchema } from '@sinclair/typebox'
import type { AuthKitUser } from '../users.js'
import type { CodeMailContext } from '../mail.js'

/** What a handler instance knows of the method it serves. */
export interface MethodState {
  name: string
  isActive: boolean
  isPrimary: boolean
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
  /** A TOTP method: the code of the current step. */
  currentTotp (handler: MfaHandler): Promise<string>
  /** A TOTP method: RFC 6238 within the window, each step accepted once. */
  checkTotp (handler: MfaHandler, code: string): Promise<boolean>
  /** One of this method's backup codes, consumed if it matches. */
  checkBackupCode (handler: MfaHandler, code: string): Promise<boolean>
  /** The otpauth link of a TOTP method. */
  totpLink (handler: MfaHandler): Promise<string>
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

const contexts = new WeakMap<MfaHandler, HandlerContext>()

/** @internal The plugin binds each instance it makes to its services. */
export function bindHandler (handler: MfaHandler, context: HandlerContext): void {
  contexts.set(handler, context)
}

/** @internal */
export function handlerContext (handler: MfaHandler): HandlerContext {
  const context = contexts.get(handler)
  if (context === undefined) throw new Error(`fastify-auth-kit: ${handler.constructor.name} was not made by the plugin; get one from app.authKit.handlerFor()`)
  return context
}

/**
 * A method of second factor. Subclass it, set NAME, and list the class in
 * `mfa.handlers`; methods that send codes implement `sendCode()`.
 */
export abstract class MfaHandler<U extends AuthKitUser = AuthKitUser> {
  /** Lower-case letters, digits and underscores, starting with a letter. */
  static NAME: string = ''
  /** Default: NAME with spaces, upper case (`phone_call` → `PHONE CALL`). */
  declare static DISPLAY_NAME: string
  /** True for methods that send a code (email, SMS); false for TOTP ones. */
  static REQUIRES_DISPATCH: boolean = true
  static SETUP_RESPONSE_MESSAGE: string = 'A verification code has been sent.'
  /** Default: mfa.totpInterval (methods that do not send). */
  static TOTP_INTERVAL?: number
  /** Default: mfa.totpValidWindow (methods that do not send). */
  static TOTP_VALID_WINDOW?: number
  /** Seconds a sent code lives; default mfa.emailCodeExpiry (methods that send). */
  static CODE_EXPIRY?: number
  /** Shape of `setup_data` in the create response; drives the OpenAPI document. */
  static setupDataSchema: TSchema = Type.Object({ detail: Type.String() })

  readonly user: U
  readonly method: MethodState

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
}

// The DISPLAY_NAME default is worked out from the class it is read on, so it
// is an inherited getter; a subclass's own `static DISPLAY_NAME = …` (or an
// assignment) shadows it with a plain value.
Object.defineProperty(MfaHandler, 'DISPLAY_NAME', {
  configurable: true,
  get (this: { NAME: string }): string { return displayNameFromName(this.NAME) },
  set (this: object, value: string) { Object.defineProperty(this, 'DISPLAY_NAME', { value, writable: true, enumerable: true, configurable: true }) },
})

function displayNameFromName (name: string): string {
  return name.replace(/_/g, ' ').toUpperCase()
}

export type MfaHandlerClass = (abstract new (user: any, method: MethodState) => MfaHandler<any>) & {
  NAME: string
  DISPLAY_NAME: string
  REQUIRES_DISPATCH: boolean
  SETUP_RESPONSE_MESSAGE: string
  TOTP_INTERVAL?: number
  TOTP_VALID_WINDOW?: number
  CODE_EXPIRY?: number
  setupDataSchema: TSchema
}

export function displayNameOf (cls: MfaHandlerClass): string {
  return typeof cls.DISPLAY_NAME === 'string' && cls.DISPLAY_NAME !== '' ? cls.DISPLAY_NAME : displayNameFromName(cls.NAME)
}

import { Type } from '@sinclair/typebox'
import { AppHandler, MfaHandler, type AuthKitOptions, type AuthKitUser } from '../../src/index.js'
import { clockedApp } from './app.js'

export interface RecordedText { to: string, code: string, user: AuthKitUser }

/**
 * An SMS-like method as a host would write one, except that `sendCode`
 * records what it would text instead of calling a provider. A fresh class per
 * call, so each test has its own record: the one recording method of the suite.
 */
export function recordingSmsHandler ({ name = 'sms', codeExpiry }: { name?: string, codeExpiry?: number } = {}) {
  const texts: RecordedText[] = []
  const textsTo = (userId: string) => texts.filter((text) => String(text.user.id) === userId)
  class TextMessageHandler extends MfaHandler {
    static override NAME = name
    static override DISPLAY_NAME = 'SMS Authentication'
    static override SETUP_RESPONSE_MESSAGE = 'SMS verification code has been sent to your phone.'
    static override CODE_EXPIRY = codeExpiry

    override async sendCode (): Promise<void> {
      const code = await this.getOtpCode()
      texts.push({ to: typeof this.user.phone === 'string' ? this.user.phone : '+15555550100', code, user: this.user })
    }
  }
  return {
    Handler: TextMessageHandler,
    texts,
    /** The code in the latest text. */
    lastCode (): string {
      const text = texts.at(-1)
      if (text === undefined) throw new Error('nothing was texted')
      return text.code
    },
    /** The code in the latest text to one user. */
    last (userId: string): string {
      const text = textsTo(userId).at(-1)
      if (text === undefined) throw new Error(`nothing was texted to ${userId}`)
      return text.code
    },
    /** How many texts one user got. */
    count (userId: string): number { return textsTo(userId).length },
  }
}

/**
 * A fresh app on a manual clock offering the app method and a recording
 * SMS-like method (`codeExpiry` its CODE_EXPIRY), closed when the test ends.
 */
export async function smsApp (t: { teardown: (fn: () => unknown) => void }, { codeExpiry, ...options }: Partial<AuthKitOptions> & { codeExpiry?: number } = {}) {
  const sms = recordingSmsHandler({ codeExpiry })
  const { app, clock } = await clockedApp(t, { ...options, mfa: { handlers: [AppHandler, sms.Handler], ...options.mfa } })
  return { app, clock, sms }
}

/**
 * A TOTP method that is not an authenticator app (say, a hardware token
 * provisioned from a link): 60-second steps, no tolerance either side, and a
 * setup shape of its own.
 */
export class HardwareTokenHandler extends MfaHandler {
  static override NAME = 'hardware_token'
  static override REQUIRES_DISPATCH = false
  static override SETUP_RESPONSE_MESSAGE = 'Load the link into your token, then confirm with a code.'
  static override TOTP_INTERVAL = 60
  static override TOTP_VALID_WINDOW = 0
  static override setupDataSchema = Type.Object({
    detail: Type.String(),
    provisioning_link: Type.String({ description: 'otpauth:// link for the token.' }),
  }, { title: 'HardwareTokenSetupData' })

  override async initializeMethod (): Promise<{ detail: string, provisioning_link: string }> {
    return { detail: this.handlerClass.SETUP_RESPONSE_MESSAGE, provisioning_link: await this.getTotpLink() }
  }
}

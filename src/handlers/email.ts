import { MfaHandler, handlerContext } from './base.js'
import { AuthKitErrors } from '../errors.js'

/**
 * Six-digit codes by email. A lower assurance than an authenticator app:
 * whoever reads the mailbox passes the second step.
 */
export class EmailHandler extends MfaHandler {
  static override NAME = 'email'
  static override DISPLAY_NAME = 'Email'
  static override REQUIRES_DISPATCH = true
  static override SETUP_RESPONSE_MESSAGE = 'Email message with MFA code has been sent.'
  /** Marks handlers that need `email.transport`; registration checks it. */
  static SENDS_EMAIL = true

  override async sendCode (): Promise<void> {
    const { services } = handlerContext(this)
    const to = services.emailOf(this.user)
    if (to === null) throw new AuthKitErrors.NoEmailAddress()
    const code = await this.getOtpCode()
    await services.sendMail({
      to,
      code,
      applicationName: services.applicationName,
      // Rounded down: the mail never promises more time than the code has.
      expiresInMinutes: Math.max(1, Math.floor(this.settings.codeExpiry / 60)),
    })
  }
}

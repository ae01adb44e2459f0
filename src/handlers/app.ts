import { Type } from '@sinclair/typebox'
import { MfaHandler } from './base.js'

/** Authenticator apps: RFC 6238 TOTP, set up by scanning a QR code. */
export class AppHandler extends MfaHandler {
  static override NAME = 'app'
  static override DISPLAY_NAME = 'Authenticator App'
  static override REQUIRES_DISPATCH = false
  static override SETUP_RESPONSE_MESSAGE = 'Scan the QR code with your authenticator app, then confirm with a code.'
  static override setupDataSchema = Type.Object({
    qr_link: Type.String({ description: 'otpauth:// link (Key URI format) holding the secret.' }),
    qr_code: Type.String({ description: 'SVG data URL of a QR code of qr_link.' }),
  }, { title: 'AppSetupData' })

  override async initializeMethod (): Promise<{ qr_link: string, qr_code: string }> {
    const link = await this.getTotpLink()
    const svg = await this.qrCodeSvg()
    return { qr_link: link, qr_code: `data:image/svg+xml;base64,${Buffer.from(svg!).toString('base64')}` }
  }

  /**
   * The QR code of the otpauth link, as SVG markup. qrcode (with pngjs, which
   * it loads for its PNG output) is imported here, by the first QR code made,
   * not at start-up: a running server mostly verifies codes.
   */
  override async qrCodeSvg (): Promise<string> {
    const { default: QRCode } = await import('qrcode')
    return QRCode.toString(await this.getTotpLink(), { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
  }
}

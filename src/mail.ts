import type { Transporter } from 'nodemailer'
import type { NotificationTemplate } from './services/notifications.js'

export interface CodeMailContext {
  code: string
  applicationName: string
  /** Whole minutes the code lives (at least 1). */
  expiresInMinutes: number
  to: string
}

export interface CodeMail {
  subject: string
  text: string
  html: string
}

export type CodeMailTemplate = (context: CodeMailContext) => CodeMail

export interface EmailOptions {
  /** nodemailer transport options (SMTP), or a Transporter the host made. */
  transport?: Transporter | Record<string, unknown> | string
  /** Sender address. */
  from?: string
  /** Replaces the code mail. Keep the code in it and nothing else secret. */
  template?: CodeMailTemplate
  /** Replaces the wording of security notification mails (SPEC section 9). */
  notificationTemplate?: NotificationTemplate
  /**
   * Seconds one delivery may take (connecting, greeting and every socket wait
   * of an SMTP transport the plugin makes, and the whole `sendMail` call of
   * any transport); past it the route answers 503 `AUTH_KIT_DELIVERY_FAILED`
   * and nothing is changed. Default 10.
   */
  timeout?: number
}

/**
 * The address itself if it is one plain mailbox (`local@domain`), else null.
 * Rule 7: CR, LF, commas, semicolons, angle brackets, quotes and group syntax
 * are refused, so no header or extra recipient can come in through a user store.
 */
export function plainMailbox (address: unknown): string | null {
  if (typeof address !== 'string' || address.length > 320) return null
  return /^[^\s@<>,;:"()[\]\\\u0000-\u001f\u007f]+@[^\s@<>,;:"()[\]\\\u0000-\u001f\u007f]+$/u.test(address) ? address : null
}

function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

export const defaultCodeMail: CodeMailTemplate = ({ code, applicationName, expiresInMinutes }) => {
  const life = expiresInMinutes === 1 ? '1 minute' : `${expiresInMinutes} minutes`
  const app = escapeHtml(applicationName)
  return {
    subject: `Your ${applicationName} verification code`,
    text: [
      `Your ${applicationName} verification code is:`,
      '',
      `    ${code}`,
      '',
      `It works once and expires in ${life}.`,
      'If you did not try to sign in, someone may know your password: change it.',
    ].join('\n'),
    html: [
      '<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5">',
      `<p>Your ${app} verification code is:</p>`,
      `<p style="font-size:28px;font-weight:bold;letter-spacing:4px;font-family:monospace">${escapeHtml(code)}</p>`,
      `<p>It works once and expires in ${life}.</p>`,
      '<p style="color:#666">If you did not try to sign in, someone may know your password: change it.</p>',
      '</body></html>',
    ].join(''),
  }
}

/** Sends code mails through the host's transport. */
export class Mailer {
  /** Milliseconds one delivery may take. */
  readonly timeoutMs: number

  private constructor (
    private readonly options: EmailOptions & Required<Pick<EmailOptions, 'from' | 'timeout'>>,
    private readonly transporter: Transporter,
    /** Made here (closed with the plugin), not handed in by the host. */
    private readonly owned: boolean,
  ) {
    this.timeoutMs = options.timeout * 1000
  }

  /**
   * The mailer of the `email` option: the host's Transporter as it is, or one
   * made from its transport options. nodemailer is imported only to make one,
   * so an application without the `email` option (or with its own
   * Transporter) does not load it (about 1 MB of V8 heap).
   */
  static async create (options: EmailOptions & Required<Pick<EmailOptions, 'from' | 'timeout'>>): Promise<Mailer> {
    const transport = options.transport
    if (transport !== undefined && typeof transport === 'object' && typeof (transport as Transporter).sendMail === 'function') {
      return new Mailer(options, transport as Transporter, false)
    }
    const { default: nodemailer } = await import('nodemailer')
    const timeoutMs = options.timeout * 1000
    // nodemailer waits up to ten minutes on a silent server by default; the host's own values win.
    const bounded = typeof transport === 'object' && transport !== null
      ? { connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs, ...transport }
      : transport
    return new Mailer(options, nodemailer.createTransport(bounded as any), true)
  }

  async sendCode (context: CodeMailContext): Promise<void> {
    const mail = (this.options.template ?? defaultCodeMail)(context)
    await this.send(context.to, mail)
  }

  /** One mail to one plain mailbox, within `timeoutMs`; throws if it is not handed over in time. */
  async send (to: string, mail: CodeMail): Promise<void> {
    if (plainMailbox(to) === null) throw new Error('fastify-auth-kit: refusing to mail an address that is not one plain mailbox')
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`mail delivery took longer than ${this.timeoutMs} ms`)), this.timeoutMs)
    })
    try {
      // The recipient as an object: nodemailer does not parse it for more addresses.
      await Promise.race([this.transporter.sendMail({ from: this.options.from, to: { name: '', address: to }, subject: mail.subject, text: mail.text, html: mail.html }), deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  close (): void {
    if (this.owned) this.transporter.close()
  }
}

import nodemailer, { type Transporter } from 'nodemailer'

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
  private readonly transporter: Transporter
  private readonly owned: boolean
  constructor (private readonly options: Required<Pick<EmailOptions, 'from'>> & EmailOptions) {
    const transport = options.transport
    if (transport !== undefined && typeof transport === 'object' && typeof (transport as Transporter).sendMail === 'function') {
      this.transporter = transport as Transporter
      this.owned = false
    } else {
      this.transporter = nodemailer.createTransport(transport as any)
      this.owned = true
    }
  }

  async sendCode (context: CodeMailContext): Promise<void> {
    const mail = (this.options.template ?? defaultCodeMail)(context)
    await this.transporter.sendMail({ from: this.options.from, to: context.to, subject: mail.subject, text: mail.text, html: mail.html })
  }

  close (): void {
    if (this.owned) this.transporter.close()
  }
}

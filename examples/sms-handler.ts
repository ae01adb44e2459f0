/**
 * An SMS method for fastify-auth-kit, complete but for the provider: texts go
 * to an in-memory outbox instead of a carrier, and a development page shows
 * them, so the method can be tried in the demo without a phone.
 *
 *   const outbox = createSmsOutbox()
 *   await app.register(authKitMfa, {
 *     secret, email,
 *     mfa: { handlers: [AppHandler, EmailHandler, SmsHandler.withGateway(outbox.gateway, { fallbackNumber: DEMO_PHONE_NUMBER })] },
 *   })
 *   outbox.register(app) // GET /dev/sms: the latest texts (development only)
 *
 * For a real provider, write an `SmsGateway` whose `send` calls its API and
 * pass that to `withGateway` instead; nothing else changes. In an application
 * outside this repository, import from 'fastify-auth-kit' instead of '../src/index.js'.
 */
import type { FastifyInstance } from 'fastify'
import createError from '@fastify/error'
import { Type } from '@sinclair/typebox'
import { MfaHandler, type AuthKitUser } from '../src/index.js'

/** Hands a text to a carrier. A rejected promise becomes a 503 AUTH_KIT_DELIVERY_FAILED, and nothing is changed. */
export interface SmsGateway {
  send (to: string, text: string): Promise<void>
}

/**
 * Where the phone number comes from. `this.user` is whatever the user store
 * returns, so a host whose own `UserStore` returns records with a `phone` field
 * gets texts sent there. The built-in store keeps no phone number; for it the
 * handler falls back to `fallbackNumber` (the demo passes a fictional one), or,
 * without one, refuses to set the method up.
 */
export interface PhoneUser extends AuthKitUser {
  phone?: string | null
}

/** A fictional number (the 555-01xx range is reserved for fiction), for the demo's users. */
export const DEMO_PHONE_NUMBER = '+15555550123'

export const SmsErrors = {
  NoPhoneNumber: createError('SMS_NO_PHONE_NUMBER', 'The account has no phone number for SMS codes.', 422),
}

export class SmsHandler extends MfaHandler<PhoneUser> {
  static override NAME = 'sms'
  static override DISPLAY_NAME = 'SMS Authentication'
  static override REQUIRES_DISPATCH = true
  static override SETUP_RESPONSE_MESSAGE = 'SMS verification code has been sent to your phone.'
  // A text is read within minutes; a shorter life than the emailed code's 10.
  static override CODE_EXPIRY = 300
  static override setupDataSchema = Type.Object({
    detail: Type.String(),
    // Optional: a create within the resend cooldown sends nothing new and answers with `detail` alone.
    phone_hint: Type.Optional(Type.String({ description: 'The number the code went to, all but its last two digits hidden.' })),
  }, { title: 'SmsSetupData' })

  /** Set by `withGateway`; the plain class has none and cannot send. */
  static gateway: SmsGateway | null = null
  /** Used when the user record has no `phone`; null refuses such users. */
  static fallbackNumber: string | null = null

  /**
   * The class to list in `mfa.handlers`, bound to one gateway. A subclass
   * rather than a global setting, so two plugin instances can use two gateways.
   */
  static withGateway (gateway: SmsGateway, { fallbackNumber = null }: { fallbackNumber?: string | null } = {}): typeof SmsHandler {
    return class SmsHandler extends this {
      static override gateway = gateway
      static override fallbackNumber = fallbackNumber
    }
  }

  /** The number codes for this user go to. */
  phoneNumber (): string {
    const own = this.user.phone
    if (typeof own === 'string' && own.trim() !== '') return own.trim()
    const fallback = (this.constructor as typeof SmsHandler).fallbackNumber
    if (fallback !== null) return fallback
    throw new SmsErrors.NoPhoneNumber()
  }

  override async sendCode (): Promise<void> {
    const { gateway } = this.constructor as typeof SmsHandler
    if (gateway === null) throw new Error('SmsHandler has no gateway: list SmsHandler.withGateway(gateway) in mfa.handlers')
    const to = this.phoneNumber()
    // Issued only once the number is known: a refused setup leaves no code behind.
    const code = await this.getOtpCode()
    // Rounded down: the text never promises more time than the code has.
    const minutes = Math.max(1, Math.floor(this.settings.codeExpiry / 60))
    await gateway.send(to, `${code} is your verification code. It expires in ${minutes} minutes. Never share it.`)
  }

  override async initializeMethod (): Promise<{ detail: string, phone_hint: string }> {
    await this.sendCode()
    return { detail: this.handlerClass.SETUP_RESPONSE_MESSAGE, phone_hint: maskNumber(this.phoneNumber()) }
  }
}

/** `+15555550123` → `•••••••••23`: enough to recognise one's own phone, not to learn a number. */
export function maskNumber (number: string): string {
  const digits = number.replace(/\D/g, '')
  return '•'.repeat(Math.max(0, digits.length - 2)) + digits.slice(-2)
}

export interface SmsMessage {
  to: string
  text: string
  /** ISO 8601. */
  sentAt: string
}

export interface SmsOutbox {
  /** Pass to `SmsHandler.withGateway`. */
  gateway: SmsGateway
  /** The texts kept, newest first. */
  messages (): SmsMessage[]
  /** Adds the development page at `path` (HTML) and `path + '/json'`. */
  register (app: FastifyInstance, path?: string): void
}

/**
 * DEVELOPMENT AID. A stand-in carrier: keeps the latest texts in memory, and
 * can show them on a page. Anyone who opens the page reads live codes, so
 * `register` refuses to run when NODE_ENV is "production".
 */
export function createSmsOutbox ({ keep = 20, now = Date.now }: { keep?: number, now?: () => number } = {}): SmsOutbox {
  const kept: SmsMessage[] = []
  const gateway: SmsGateway = {
    async send (to, text) {
      kept.unshift({ to, text, sentAt: new Date(now()).toISOString() })
      kept.length = Math.min(kept.length, keep)
    },
  }
  return {
    gateway,
    messages: () => kept.map((m) => ({ ...m })),
    register (app, path = '/dev/sms') {
      if (process.env.NODE_ENV === 'production') throw new Error('The SMS outbox page shows one-time codes and is a development aid: it refuses to run with NODE_ENV=production')
      app.log.warn({ path }, 'SMS outbox page registered: a development aid that shows one-time codes')
      const noStore = { 'cache-control': 'no-store' }
      app.get(path, { schema: { hide: true } }, async (_request, reply) => reply.headers(noStore).type('text/html; charset=utf-8').send(outboxPage(kept)))
      app.get(`${path}/json`, { schema: { hide: true } }, async (_request, reply) => reply.headers(noStore).send(kept))
    },
  }
}

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function outboxPage (messages: SmsMessage[]): string {
  const rows = messages.map((m) => `<tr><td>${escapeHtml(m.sentAt)}</td><td>${escapeHtml(m.to)}</td><td>${escapeHtml(m.text)}</td></tr>`).join('\n')
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="robots" content="noindex"><title>SMS outbox (development)</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}.warn{background:#fff3cd;border:1px solid #e0b100;padding:.75rem}table{border-collapse:collapse;margin-top:1rem}td,th{border:1px solid #ccc;padding:.4rem .6rem;text-align:left}</style>
</head>
<body>
<h1>SMS outbox</h1>
<p class="warn"><strong>Development aid.</strong> These texts were not sent to any phone: the demo's SMS gateway keeps them here instead. They hold live one-time codes; this page must never be reachable in production.</p>
${messages.length === 0 ? '<p>No texts yet. Set up the SMS method, or log in with it, and reload.</p>' : `<table><thead><tr><th>sent</th><th>to</th><th>text</th></tr></thead><tbody>\n${rows}\n</tbody></table>`}
</body>
</html>
`
}

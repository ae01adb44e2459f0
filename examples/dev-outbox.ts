/**
 * DEVELOPMENT AID — NEVER RUN IN PRODUCTION.
 *
 * A nodemailer transport that keeps the mails it is given in memory instead of
 * sending them, and a page that lists them, so the email method can be tried
 * without a mail server and without printing codes to the server log. Anyone
 * who can open the page can read every code, so `register` refuses to run when
 * NODE_ENV is "production".
 */
import nodemailer, { type Transport, type Transporter } from 'nodemailer'
import type { FastifyInstance } from 'fastify'

export interface OutboxMail {
  to: string
  subject: string
  text: string
  date: Date
}

export interface DevOutbox {
  /** Pass as `email.transport`. */
  transport: Transporter
  /** Mails kept, newest first. */
  mails: OutboxMail[]
  /** Adds the page listing the mails (default path '/dev/outbox'). */
  register (app: FastifyInstance, path?: string): void
}

/** How many mails the outbox keeps; older ones are dropped. */
const KEPT = 50

function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

function addressList (value: unknown): string {
  const list = Array.isArray(value) ? value : [value]
  return list.map((entry) => (typeof entry === 'string' ? entry : String((entry as { address?: unknown } | null)?.address ?? ''))).join(', ')
}

function renderPage (mails: OutboxMail[]): string {
  const items = mails.map((mail) => [
    '<article>',
    `<h2>${escapeHtml(mail.subject)}</h2>`,
    `<p class="meta">To ${escapeHtml(mail.to)} · ${escapeHtml(mail.date.toISOString())}</p>`,
    `<pre>${escapeHtml(mail.text)}</pre>`,
    '</article>',
  ].join(''))
  return [
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">',
    '<title>Development outbox</title>',
    '<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}',
    '.warning{background:#fdecea;border:2px solid #b3261e;color:#b3261e;padding:.75rem 1rem;font-weight:bold}',
    'article{border-bottom:1px solid #ddd;padding:.5rem 0}.meta{color:#666}pre{white-space:pre-wrap;background:#f6f6f6;padding:.75rem}</style>',
    '</head><body>',
    '<p class="warning">Development aid: mails are kept in memory and shown to anyone who opens this page. Never run this in production.</p>',
    `<h1>Outbox</h1><p>${mails.length === 0 ? 'No mail yet.' : `The latest ${mails.length} mail${mails.length === 1 ? '' : 's'}, newest first.`} <a href="">Refresh</a></p>`,
    ...items,
    '</body></html>',
  ].join('')
}

export function createDevOutbox (): DevOutbox {
  const mails: OutboxMail[] = []
  const keeper: Transport<{ envelope: object, messageId: string }> = {
    name: 'dev-outbox',
    version: '1.0.0',
    send (mail, callback) {
      mail.normalize((err, data) => {
        if (err != null || data === undefined) return callback(err ?? new Error('dev-outbox: could not read the mail'), { envelope: {}, messageId: '' })
        mails.unshift({
          to: addressList(data.to),
          subject: String(data.subject ?? ''),
          text: typeof data.text === 'string' ? data.text : String(data.text ?? ''),
          date: new Date(),
        })
        mails.length = Math.min(mails.length, KEPT)
        callback(null, { envelope: mail.message.getEnvelope(), messageId: mail.message.messageId() })
      })
    },
  }
  const transport = nodemailer.createTransport(keeper)

  return {
    transport,
    mails,
    register (app, path = '/dev/outbox') {
      if (process.env.NODE_ENV === 'production') throw new Error('dev-outbox shows every mailed code to anyone: it must not run in production')
      app.get(path, { schema: { hide: true } }, async (_request, reply) => {
        return reply
          .header('Cache-Control', 'no-store')
          .header('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'")
          .type('text/html; charset=utf-8')
          .send(renderPage(mails))
      })
    },
  }
}

import { createServer as createTcpServer } from 'node:net'
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server'
import { simpleParser, type ParsedMail } from 'mailparser'
import type { FastifyInstance } from 'fastify'
import { EmailHandler, AppHandler, type AuthKitOptions } from '../../src/index.js'
import { buildApp, createAndConfirm, get, manualClock, newUser, post, stepUp, userWithApp } from './app.js'
import { startLogin } from './flows.js'

/** What the loopback SMTP server does with the next messages. */
export type SmtpMode = 'accept' | 'reject-recipient' | 'reject-message'

export interface Mailbox {
  port: number
  /** Delivered messages, oldest first. */
  messages: ParsedMail[]
  mode: SmtpMode
  close (): Promise<void>
}

function smtpError (message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode })
}

/**
 * A real SMTP server on 127.0.0.1 that parses every message it accepts
 * before answering, so a message is in `messages` by the time sendMail (and
 * so the route) has returned.
 */
export async function startSmtp (): Promise<Mailbox> {
  const mailbox: Mailbox = { port: 0, messages: [], mode: 'accept', close: async () => {} }
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo (_address, _session, callback) {
      if (mailbox.mode === 'reject-recipient') return callback(smtpError('No such mailbox here', 550))
      callback()
    },
    onData (stream: SMTPServerDataStream, _session, callback) {
      simpleParser(stream).then((mail) => {
        if (mailbox.mode === 'reject-message') return callback(smtpError('Message refused as spam', 554))
        mailbox.messages.push(mail)
        callback()
      }, (err: Error) => callback(err))
    },
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  mailbox.port = (server.server.address() as { port: number }).port
  mailbox.close = async () => new Promise<void>((resolve) => server.close(() => resolve()))
  return mailbox
}

/** A loopback port where nothing listens (bound once, then released). */
export async function deadPort (): Promise<number> {
  const probe = createTcpServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()))
  const { port } = probe.address() as { port: number }
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

export const FROM = 'no-reply@example.com'

/** SMTP transport options for a loopback server without TLS. */
export function smtpTransport (port: number) {
  return { host: '127.0.0.1', port, secure: false, ignoreTLS: true, connectionTimeout: 2000, greetingTimeout: 2000, socketTimeout: 2000 }
}

/**
 * The plugin with the app and email methods, mailing through `port`.
 * Notification mails are off unless `options.notifications` says otherwise,
 * so tests that count code mails see only those.
 */
export async function buildEmailApp (port: number, options: Partial<AuthKitOptions> = {}, fastifyOptions: Record<string, unknown> = {}): Promise<FastifyInstance> {
  const { mfa, email, ...rest } = options
  return buildApp({
    notifications: false,
    email: { transport: smtpTransport(port), from: FROM, ...email },
    mfa: { handlers: [AppHandler, EmailHandler], applicationName: 'Test App', ...mfa },
    ...rest,
  }, fastifyOptions)
}

/** The six-digit code in a mail's plain-text part. */
export function codeIn (mail: ParsedMail): string {
  const match = /\b([0-9]{6})\b/.exec(mail.text ?? '')
  if (match === null) throw new Error(`no code in mail: ${JSON.stringify(mail.text)}`)
  return match[1]
}

/** The code in the one mail that `action` makes the plugin send. */
export async function codeMailedBy (mailbox: Mailbox, action: () => Promise<unknown>): Promise<string> {
  const before = mailbox.messages.length
  await action()
  return codeIn(onlyNewMail(mailbox, before))
}

/** The address a parsed mail went to. */
export function recipientOf (mail: ParsedMail): string {
  const to = Array.isArray(mail.to) ? mail.to[0] : mail.to
  return to?.value[0]?.address ?? ''
}

/** The one mail delivered since `before` messages; fails if none or several came. */
export function onlyNewMail (mailbox: Mailbox, before: number): ParsedMail {
  const fresh = mailbox.messages.slice(before)
  if (fresh.length !== 1) throw new Error(`expected exactly one new mail, got ${fresh.length}`)
  return fresh[0]
}

/** The email method set up and confirmed with the code its setup mailed. */
export async function confirmMailed (app: FastifyInstance, mailbox: Mailbox, access: string) {
  const before = mailbox.messages.length
  return createAndConfirm(app, access, 'email', () => codeIn(onlyNewMail(mailbox, before)))
}

/**
 * A user with the email method set up and confirmed (primary), with the
 * clock moved past the cooldown so the next login sends a code. `access`
 * carries `mfa` (SPEC section 3, "Methods", rule 1): the session was stepped
 * up with a code from `POST /mfa/send/` (section 9, "Step-up"), and the clock
 * moved past that send's cooldown too.
 */
export async function userWithEmail (app: FastifyInstance, mailbox: Mailbox, clock: { advance: (s: number) => void }, cooldown = 30) {
  const user = await newUser(app)
  const created = await confirmMailed(app, mailbox, user.access)
  clock.advance(cooldown)
  const before = mailbox.messages.length
  const sent = await post(app, '/mfa/send/', { method: 'email' }, user.access)
  if (sent.status !== 200) throw new Error(`send failed: ${JSON.stringify(sent.body)}`)
  const access = await stepUp(app, user.access, codeIn(onlyNewMail(mailbox, before)), 'email')
  clock.advance(cooldown)
  return { ...user, access, email: `${user.username}@example.com`, backupCodes: created.backup_codes }
}

/** Step 1 of a login whose method mails its code: the attempt and the one code mailed for it. */
export async function startMailedLogin (app: FastifyInstance, mailbox: Mailbox, user: { username: string, password: string }) {
  const before = mailbox.messages.length
  const step1 = await startLogin(app, user)
  return { ...step1, code: codeIn(onlyNewMail(mailbox, before)) }
}

/** A fresh app on a manual clock mailing into `mailbox`, closed when the test ends. */
export async function emailApp (t: { teardown: (fn: () => unknown) => void }, mailbox: Mailbox, options: Partial<AuthKitOptions> = {}, fastifyOptions: Record<string, unknown> = {}) {
  const clock = manualClock()
  const app = await buildEmailApp(mailbox.port, { now: clock.now, ...options }, fastifyOptions)
  t.teardown(() => app.close())
  return { app, clock }
}

/** An app as emailApp makes it, with a user whose primary is the email method (userWithEmail). */
export async function appWithEmailUser (t: { teardown: (fn: () => unknown) => void }, mailbox: Mailbox, options: Partial<AuthKitOptions> = {}, fastifyOptions: Record<string, unknown> = {}) {
  const { app, clock } = await emailApp(t, mailbox, options, fastifyOptions)
  const user = await userWithEmail(app, mailbox, clock, options.mfa?.resendCooldown ?? 30)
  return { app, clock, user }
}

/** The user's `email` entry in GET /mfa/. */
export async function emailMethodOf (app: FastifyInstance, access: string) {
  const list = await get(app, '/mfa/', access)
  return list.body.find((m: { name: string }) => m.name === 'email')
}

/** A user whose primary is the app, with email set up and confirmed too; the cooldown has passed. */
export async function userWithAppAndEmail (app: FastifyInstance, mailbox: Mailbox, clock: { now: () => number, advance: (s: number) => void }) {
  const user = await userWithApp(app, clock)
  await confirmMailed(app, mailbox, user.access)
  clock.advance(30)
  return user
}

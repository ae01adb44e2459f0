import type { Mailer } from '../mail.js'
import { plainMailbox } from '../mail.js'
import type { AuthKitUser, UserStore } from '../users.js'
import { deviceLabel } from './login.js'
import type { AuthKitEvent, AuthKitEventType, EventBus, RequestContext } from './events.js'

/** The changes a user is told of by mail (SPEC section 9, "Notification mails"). */
export type NotificationKind = 'method_confirmed' | 'method_deactivated' | 'method_deleted' | 'backup_codes_regenerated' | 'user_locked' | 'device_remembered' | 'mfa_reset'

const KINDS = new Set<AuthKitEventType>(['method_confirmed', 'method_deactivated', 'method_deleted', 'backup_codes_regenerated', 'user_locked', 'device_remembered', 'mfa_reset'])

/** What a notification template is given; never a code, secret or token. */
export interface NotificationContext {
  kind: NotificationKind
  applicationName: string
  /** Display name of the method concerned, if any. */
  method?: string
  /** ISO 8601. */
  at: string
  /** The client address of the request, or null for an admin action. */
  ip: string | null
  /** "Browser on System" from the request's User-Agent, or null. */
  device: string | null
  to: string
}

export interface NotificationMail { subject: string, text: string, html: string }
export type NotificationTemplate = (context: NotificationContext) => NotificationMail

function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

function whatHappened ({ kind, method }: NotificationContext): string {
  const m = method ?? 'a sign-in method'
  switch (kind) {
    case 'method_confirmed': return `${m} was turned on as a second step for signing in.`
    case 'method_deactivated': return `${m} was turned off as a second step for signing in.`
    case 'method_deleted': return `${m} was removed from your account.`
    case 'backup_codes_regenerated': return `New backup codes were made for ${m}; the old ones no longer work.`
    case 'user_locked': return 'Too many wrong codes were entered, so signing in is paused for a while.'
    case 'device_remembered': return 'A device was remembered: it can sign in without the second step for a while.'
    case 'mfa_reset': return 'An administrator removed every second-step method from your account.'
  }
}

/** The default wording: what happened, when, from where, and what to do if it was not the user. */
export const defaultNotificationMail: NotificationTemplate = (context) => {
  const happened = whatHappened(context)
  const where = context.ip === null ? 'by an administrator' : `from ${context.ip}${context.device !== null ? ` (${context.device})` : ''}`
  const lines = [
    happened,
    '',
    `When: ${context.at}`,
    `Where: ${where}`,
    '',
    'If this was you, there is nothing to do.',
    'If it was not, someone may know your password: change it now, and review your sign-in methods and devices.',
  ]
  return {
    subject: `${context.applicationName}: a security setting of your account changed`,
    text: lines.join('\n'),
    html: '<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5">' +
      lines.filter((l) => l !== '').map((l) => `<p>${escapeHtml(l)}</p>`).join('') + '</body></html>',
  }
}

/**
 * Mails the user about each change to their account's security. Listens on
 * the event bus, so it runs after the route has answered and a failed mail
 * is logged, never failing the route.
 */
export class Notifier {
  constructor (private readonly props: {
    mailer: Mailer
    users: UserStore<any>
    applicationName: string
    displayName: (method: string) => string | undefined
    template?: NotificationTemplate
  }) {}

  attach (events: EventBus): void {
    events.subscribe(async (event, ctx) => this.notify(event, ctx))
  }

  private async notify (event: AuthKitEvent, ctx: RequestContext): Promise<void> {
    if (!KINDS.has(event.type) || event.userId === null) return
    const user: AuthKitUser | null | undefined = await this.props.users.findById(event.userId)
    const to = user == null ? null : plainMailbox(this.props.users.emailOf(user))
    if (to === null) return
    const mail = (this.props.template ?? defaultNotificationMail)({
      kind: event.type as NotificationKind,
      applicationName: this.props.applicationName,
      method: event.method === undefined ? undefined : this.props.displayName(event.method) ?? event.method,
      at: event.at,
      ip: event.ip,
      device: ctx.userAgent === undefined ? null : deviceLabel(ctx.userAgent),
      to,
    })
    await this.props.mailer.send(to, mail)
  }
}

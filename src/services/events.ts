import type { FastifyBaseLogger } from 'fastify'

export type AuthKitEventType =
  | 'login_succeeded' | 'login_failed' | 'mfa_challenge_started' | 'mfa_verified' | 'mfa_failed'
  | 'user_locked' | 'method_created' | 'method_confirmed' | 'primary_changed' | 'method_deactivated'
  | 'method_deleted' | 'backup_code_used' | 'backup_codes_regenerated' | 'step_up_succeeded' | 'device_remembered'
  | 'device_revoked' | 'session_revoked' | 'login_throttled' | 'mfa_reset' | 'user_unlocked'

/** A security event: who and what, never a code, secret or token. */
export interface AuthKitEvent {
  type: AuthKitEventType
  userId: string | null
  method?: string
  /** `request.ip`; null for an admin call made outside a request. */
  ip: string | null
  /** ISO 8601. */
  at: string
}

/** Where a request came from, for the events it causes. */
export interface RequestContext {
  ip: string | null
  /** The request's User-Agent header (device labels, notification mails). */
  userAgent?: string
}

/** A listener inside the plugin (notification mails): it also sees the request's context. */
export type InternalListener = (event: AuthKitEvent, ctx: RequestContext) => void | Promise<void>

export class EventBus {
  private readonly internal: InternalListener[] = []

  constructor (
    private readonly listener: ((event: AuthKitEvent) => void | Promise<void>) | undefined,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number,
  ) {}

  /** Adds a listener of the plugin's own; like the host's, it never holds up or breaks a route. */
  subscribe (listener: InternalListener): void {
    this.internal.push(listener)
  }

  /**
   * Hands the event to the listeners without waiting for them: a slow or
   * failing listener is logged and never holds up or breaks the route.
   */
  emit (type: AuthKitEventType, ctx: RequestContext, userId: string | null, method?: string): void {
    if (this.listener === undefined && this.internal.length === 0) return
    const event: AuthKitEvent = { type, userId, ...(method !== undefined ? { method } : {}), ip: ctx.ip, at: new Date(this.now()).toISOString() }
    if (this.listener !== undefined) this.deliver(type, () => this.listener!(event), 'onEvent listener')
    for (const listener of this.internal) this.deliver(type, () => listener(event, ctx), 'notification')
  }

  private deliver (type: string, call: () => void | Promise<void>, what: string): void {
    const failed = (err: unknown): void => {
      this.log.error({ event: type, err: err instanceof Error ? { message: err.message, name: err.name } : String(err) }, `fastify-auth-kit: ${what} failed`)
    }
    try {
      Promise.resolve(call()).catch(failed)
    } catch (err) {
      failed(err)
    }
  }
}

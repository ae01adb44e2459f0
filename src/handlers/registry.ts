import type { AuthKitUser } from '../users.js'
import { type HandlerServices, type HandlerSettings, type MethodState, type MfaHandler, type MfaHandlerClass, bindHandler, displayNameOf } from './base.js'

/** This plugin instance's methods, in `mfa.handlers` order. */
export class HandlerRegistry {
  private readonly byName: Map<string, MfaHandlerClass>
  constructor (
    handlers: MfaHandlerClass[],
    private readonly defaults: { totpInterval: number, totpValidWindow: number, emailCodeExpiry: number },
  ) {
    this.byName = new Map(handlers.map((h) => [h.NAME, h]))
  }

  /** Names in order. */
  list (): string[] { return [...this.byName.keys()] }

  get (name: string): MfaHandlerClass | undefined { return this.byName.get(name) }

  classes (): MfaHandlerClass[] { return [...this.byName.values()] }

  displayName (name: string): string { return displayNameOf(this.require(name)) }

  require (name: string): MfaHandlerClass {
    const cls = this.byName.get(name)
    if (cls === undefined) throw new Error(`fastify-auth-kit: no handler named "${name}"`)
    return cls
  }

  settingsFor (cls: MfaHandlerClass): HandlerSettings {
    return {
      totpInterval: cls.TOTP_INTERVAL ?? this.defaults.totpInterval,
      totpValidWindow: cls.TOTP_VALID_WINDOW ?? this.defaults.totpValidWindow,
      codeExpiry: cls.CODE_EXPIRY ?? this.defaults.emailCodeExpiry,
    }
  }

  /** A handler instance for one user's method, bound to this plugin's services. */
  instantiate (services: HandlerServices, user: AuthKitUser, method: MethodState & { id: string }, sealedSecret?: string | null): MfaHandler {
    const cls = this.require(method.name) as unknown as new (user: AuthKitUser, method: MethodState) => MfaHandler
    const handler = new cls(user, { name: method.name, isActive: method.isActive, isPrimary: method.isPrimary })
    bindHandler(handler, { services, userId: String(user.id), methodId: method.id, settings: this.settingsFor(cls as unknown as MfaHandlerClass), sealedSecret })
    return handler
  }
}

import { Type, type TSchema } from '@sinclair/typebox'
import type { AuthKitUser } from '../users.js'
import type { ResolvedOptions } from '../options.js'
import { type HandlerServices, type HandlerSettings, type MethodState, type MfaHandler, type MfaHandlerClass, bindHandler, displayNameOf } from './base.js'

/** Request and answer fields of challenge–response methods (SPEC section 10), for the route schemas. */
export interface ChallengeResponseSchemas {
  /** `challenge` in the answers of login step 1, change-method and resend. */
  challenge?: TSchema
  /** `challenge` in the answer of `POST /mfa/send/`. */
  sendChallenge?: TSchema
  /** `credential` at login verify, step-up and the method routes that take a code. */
  credential?: TSchema
  /** `credential` at `POST /mfa/confirm/`. */
  setupCredential?: TSchema
}

/** This plugin instance's methods, in `mfa.handlers` order. */
export class HandlerRegistry {
  private readonly byName: Map<string, MfaHandlerClass>
  constructor (
    handlers: MfaHandlerClass[],
    private readonly defaults: Pick<ResolvedOptions['mfa'], 'totpInterval' | 'totpValidWindow' | 'emailCodeExpiry'>,
  ) {
    this.byName = new Map(handlers.map((h) => [h.NAME, h]))
  }

  /** Names in order. */
  list (): string[] { return [...this.byName.keys()] }

  get (name: string): MfaHandlerClass | undefined { return this.byName.get(name) }

  classes (): MfaHandlerClass[] { return [...this.byName.values()] }

  displayName (name: string): string { return displayNameOf(this.require(name)) }

  /** Whether the method dispatches (a code, or a challenge): `requires_dispatch`, and what send and resend allow. */
  requiresDispatch (name: string): boolean { return this.require(name).REQUIRES_DISPATCH }

  /**
   * The fields challenge–response methods add to the routes, each the shape
   * one handler declares, or `anyOf` over several; none of them when no
   * configured method declares it (the OpenAPI document then never shows them).
   */
  challengeResponseSchemas (): ChallengeResponseSchemas {
    const classes = this.classes()
    const either = (schemas: Array<TSchema | undefined>): TSchema | undefined => {
      const present = schemas.filter((s): s is TSchema => s !== undefined)
      return present.length === 0 ? undefined : present.length === 1 ? present[0] : Type.Union(present)
    }
    return {
      challenge: either(classes.map((c) => c.challengeSchema)),
      sendChallenge: either(classes.map((c) => c.sendChallengeSchema ?? c.challengeSchema)),
      credential: either(classes.map((c) => c.credentialSchema)),
      setupCredential: either(classes.map((c) => c.setupCredentialSchema)),
    }
  }

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

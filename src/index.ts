export { authKitMfa, authKitMfa as default, type AuthKitUserRecord, type AuthKitRequestFields } from './plugin.js'
export type { AuthKitOptions } from './options.js'
export {
  MfaHandler, type MfaHandlerClass, type MethodState, type HandlerSettings,
  type ChallengeScope, type Dispatch, type FactorResponse, type StoredCredential, type WebAuthnSettings,
} from './handlers/base.js'
export { AppHandler } from './handlers/app.js'
export { EmailHandler } from './handlers/email.js'
export { PasskeyHandler } from './handlers/passkey.js'
export type { AuthKitDecorator } from './core.js'
export type { UserStore, AuthKitUser, BuiltInUser } from './users.js'
export type { AuthKitEvent, AuthKitEventType } from './services/events.js'
export type { CodeMail, CodeMailContext, CodeMailTemplate, EmailOptions } from './mail.js'
export { defaultCodeMail } from './mail.js'
export { AuthKitErrors, AuthKitOptionsError } from './errors.js'
export { authKitRedactPaths } from './redaction.js'
/** Runs the bundled migrations on a Kysely instance (for hosts that use `migrate: false`). */
export { migrateToLatest as migrateAuthKit } from './db/connect.js'
export type { NotificationContext, NotificationKind, NotificationMail, NotificationTemplate } from './services/notifications.js'
export { defaultNotificationMail } from './services/notifications.js'
export type { AuthKitAdmin } from './core.js'

/**
 * Request and answer types of the routes (SPEC section 3), taken from the
 * TypeBox schemas the routes are registered with. Every import here is
 * type-only: nothing of the server reaches the client's JavaScript.
 */
import type { Static, TSchema } from '@sinclair/typebox'
import type { Detail, TokenPair } from '../../schemas/common.js'
import type { ErrorCode } from '../errors.js'
import type { Device, LoginDone, LoginMfaStarted, LoginSetupRequired, Session, loginRouteSchemas } from '../../schemas/login.js'
import type { BackupCodes, methodRouteSchemas } from '../../schemas/methods.js'
import type { PasskeyAuthenticationResponse, PasskeyCreationOptions, PasskeyRegistrationResponse, PasskeyRequestOptions } from '../../schemas/passkey.js'
import type { AppHandler } from '../handlers/app.js'

type LoginRoutes = typeof loginRouteSchemas
type MethodRoutes = ReturnType<typeof methodRouteSchemas>
type BodyOf<Route extends { body: TSchema }> = Static<Route['body']>
type AnswerOf<Route extends { response: Record<number, TSchema> }, Status extends number> = Route['response'][Status] extends infer Answer extends TSchema ? Static<Answer> : never

// Passkeys (SPEC section 10). The route schemas the client's types come from
// are the code-only ones; a configured passkey handler adds `credential` to
// the bodies that take a code and `challenge` to some answers, typed here from
// the passkey schemas, so every client has them (optional).

/** `credential` at login verify, step-up and the method routes: `finishPasskey()` of an assertion (`navigator.credentials.get()`). */
export type PasskeyCredential = Static<typeof PasskeyAuthenticationResponse>
/** `credential` at `POST /mfa/confirm/`: `finishPasskey()` of a new passkey (`navigator.credentials.create()`). */
export type PasskeyRegistrationCredential = Static<typeof PasskeyRegistrationResponse>
/** A passkey's `challenge`, for `startPasskey()`: the request options of `navigator.credentials.get()`. */
export type PasskeyChallenge = Static<typeof PasskeyRequestOptions>
/** A passkey's creation options, for `startPasskey()`: `setup_data.options`, or send's `challenge` for a passkey not yet confirmed. */
export type PasskeyCreationChallenge = Static<typeof PasskeyCreationOptions>

/**
 * A body that takes the code `Field` or, for a passkey, `credential` instead;
 * never both (the server answers 400). `Field` keeps its own optionality.
 */
type CodeOrCredential<Body, Field extends keyof Body, Credential> =
  Omit<Body, Field> & ((Pick<Body, Field> & { credential?: undefined }) | ({ [K in Field]?: undefined } & { credential: Credential }))

/** The tokens the client keeps: a setup-only login (SPEC section 9) has no refresh token. */
export type Tokens = Pick<Static<typeof TokenPair>, 'access'> & Partial<Omit<Static<typeof TokenPair>, 'access'>>

export type RegisterBody = BodyOf<LoginRoutes['registration']>
export type RegisterAnswer = AnswerOf<LoginRoutes['registration'], 201>
export type LoginBody = BodyOf<LoginRoutes['login']>
/** Step 2 follows (`mfa_enabled: true`), or logged in, or logged in only to set MFA up. */
export type LoginAnswer = LoginMfaStartedAnswer | Static<typeof LoginDone> | Static<typeof LoginSetupRequired>
/** Step 2 follows; `challenge` when the attempt's method is a passkey. */
export type LoginMfaStartedAnswer = Static<typeof LoginMfaStarted> & { challenge?: PasskeyChallenge }
/** A code, a backup code, or for a passkey attempt `credential`, the answer to its `challenge`. */
export type VerifyBody = CodeOrCredential<BodyOf<LoginRoutes['verify']>, 'code', PasskeyCredential>
export type VerifyAnswer = AnswerOf<LoginRoutes['verify'], 200>
/** A code, a backup code, or for a passkey `credential`, the answer to the `challenge` of `send`. */
export type StepUpBody = CodeOrCredential<BodyOf<LoginRoutes['stepUp']>, 'code', PasskeyCredential>
export type StepUpAnswer = AnswerOf<LoginRoutes['stepUp'], 200>
export type ChangeMethodBody = BodyOf<LoginRoutes['changeMethod']>
/** `challenge` when the new method is a passkey. */
export type ChangeMethodAnswer = AnswerOf<LoginRoutes['changeMethod'], 200> & { challenge?: PasskeyChallenge }
export type ResendBody = BodyOf<LoginRoutes['resend']>
/** `challenge` for a passkey attempt: the new one, which replaces the attempt's. */
export type ResendAnswer = AnswerOf<LoginRoutes['resend'], 200> & { challenge?: PasskeyChallenge }
export type RefreshBody = BodyOf<LoginRoutes['refresh']>
export type RefreshAnswer = Static<typeof TokenPair>
export type LogoutBody = BodyOf<LoginRoutes['logout']>
export type UserAnswer = AnswerOf<LoginRoutes['user'], 200>
export type SessionInfo = Static<typeof Session>
export type RevokeSessionBody = BodyOf<LoginRoutes['revokeSession']>
export type DeviceInfo = Static<typeof Device>
export type RevokeDeviceBody = BodyOf<LoginRoutes['revokeDevice']>

export type MethodInfo = AnswerOf<MethodRoutes['list'], 200>[number]
export type CreateMethodBody = BodyOf<MethodRoutes['create']>
/**
 * `setup_data` is the handler's own shape: the app method's `{qr_link, qr_code}`,
 * `{detail}` for a method that sends codes, a passkey's `{options}` (for
 * `startPasskey`, SPEC section 10), or a custom handler's fields.
 */
export type SetupData = Partial<Static<typeof AppHandler.setupDataSchema> & Static<typeof Detail> & { options: PasskeyCreationChallenge }> & Record<string, unknown>
export interface CreateMethodAnswer { method: string, backup_codes: Static<typeof BackupCodes>, setup_data: SetupData }
/** The method's own code, or for a passkey `credential`, the new passkey made from `setup_data.options`. */
export type ConfirmMethodBody = CodeOrCredential<BodyOf<MethodRoutes['confirm']>, 'code', PasskeyRegistrationCredential>
export type ConfirmMethodAnswer = AnswerOf<MethodRoutes['confirm'], 200>
/**
 * `primary_code` (or, when the current primary is a passkey, `credential`) is
 * required by the server only while `updatePrimaryMethodRequirePrimaryCode` is on.
 */
export type SetPrimaryBody = CodeOrCredential<Omit<BodyOf<MethodRoutes['primary']>, 'primary_code'> & { primary_code?: string }, 'primary_code', PasskeyCredential>
export type DeactivateBody = CodeOrCredential<BodyOf<MethodRoutes['deactivate']>, 'code', PasskeyCredential>
export type DeleteMethodBody = CodeOrCredential<BodyOf<MethodRoutes['delete']>, 'code', PasskeyCredential>
export type SendBody = BodyOf<MethodRoutes['send']>
/**
 * For a passkey, `challenge`: request options to answer (an active passkey,
 * for step-up and the method routes) or fresh creation options (one not yet
 * confirmed, for confirm).
 */
export type SendAnswer = Static<typeof Detail> & { challenge?: PasskeyChallenge | PasskeyCreationChallenge }
export type BackupCodesBody = CodeOrCredential<BodyOf<MethodRoutes['backupCodes']>, 'code', PasskeyCredential>
export type BackupCodesAnswer = AnswerOf<MethodRoutes['backupCodes'], 200>
export type DetailAnswer = Static<typeof Detail>

export type { ErrorCode }

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
import type { AppHandler } from '../handlers/app.js'
import type { PublicKeyCredentialCreationOptionsJSON } from './passkey.js'

type LoginRoutes = typeof loginRouteSchemas
type MethodRoutes = ReturnType<typeof methodRouteSchemas>
type BodyOf<Route extends { body: TSchema }> = Static<Route['body']>
type AnswerOf<Route extends { response: Record<number, TSchema> }, Status extends number> = Route['response'][Status] extends infer Answer extends TSchema ? Static<Answer> : never

/** The tokens the client keeps: a setup-only login (SPEC section 9) has no refresh token. */
export type Tokens = Pick<Static<typeof TokenPair>, 'access'> & Partial<Omit<Static<typeof TokenPair>, 'access'>>

export type RegisterBody = BodyOf<LoginRoutes['registration']>
export type RegisterAnswer = AnswerOf<LoginRoutes['registration'], 201>
export type LoginBody = BodyOf<LoginRoutes['login']>
/** Step 2 follows (`mfa_enabled: true`), or logged in, or logged in only to set MFA up. */
export type LoginAnswer = Static<typeof LoginMfaStarted> | Static<typeof LoginDone> | Static<typeof LoginSetupRequired>
export type VerifyBody = BodyOf<LoginRoutes['verify']>
export type VerifyAnswer = AnswerOf<LoginRoutes['verify'], 200>
export type StepUpBody = BodyOf<LoginRoutes['stepUp']>
export type StepUpAnswer = AnswerOf<LoginRoutes['stepUp'], 200>
export type ChangeMethodBody = BodyOf<LoginRoutes['changeMethod']>
export type ChangeMethodAnswer = AnswerOf<LoginRoutes['changeMethod'], 200>
export type ResendBody = BodyOf<LoginRoutes['resend']>
export type ResendAnswer = AnswerOf<LoginRoutes['resend'], 200>
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
export type SetupData = Partial<Static<typeof AppHandler.setupDataSchema> & Static<typeof Detail> & { options: PublicKeyCredentialCreationOptionsJSON }> & Record<string, unknown>
export interface CreateMethodAnswer { method: string, backup_codes: Static<typeof BackupCodes>, setup_data: SetupData }
export type ConfirmMethodBody = BodyOf<MethodRoutes['confirm']>
export type ConfirmMethodAnswer = AnswerOf<MethodRoutes['confirm'], 200>
/** `primary_code` is required by the server only while `updatePrimaryMethodRequirePrimaryCode` is on. */
export type SetPrimaryBody = Omit<BodyOf<MethodRoutes['primary']>, 'primary_code'> & { primary_code?: string }
export type DeactivateBody = BodyOf<MethodRoutes['deactivate']>
export type DeleteMethodBody = BodyOf<MethodRoutes['delete']>
export type SendBody = BodyOf<MethodRoutes['send']>
export type BackupCodesBody = BodyOf<MethodRoutes['backupCodes']>
export type BackupCodesAnswer = AnswerOf<MethodRoutes['backupCodes'], 200>
export type DetailAnswer = Static<typeof Detail>

export type { ErrorCode }

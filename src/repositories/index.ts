import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { BackupCodeRepository } from './backup-codes.js'
import { ChallengeRepository } from './challenges.js'
import { CredentialRepository } from './credentials.js'
import { TrustedDeviceRepository } from './devices.js'
import { LoginAttemptRepository } from './login-attempts.js'
import { LoginFailureRepository } from './login-failures.js'
import { MethodRepository } from './methods.js'
import { RefreshTokenRepository } from './refresh-tokens.js'
import { SentCodeRepository } from './sent-codes.js'
import { SessionRepository } from './sessions.js'

/**
 * One repository per table over one handle. Built once over the plugin's
 * database and shared by the services; a transaction makes its own over `trx`.
 */
export interface Repositories {
  readonly methods: MethodRepository
  readonly backupCodes: BackupCodeRepository
  readonly sentCodes: SentCodeRepository
  /** Challenges of challenge–response methods (SPEC section 10), single use. */
  readonly challenges: ChallengeRepository
  /** Registered credentials of challenge–response methods (passkeys). */
  readonly credentials: CredentialRepository
  readonly sessions: SessionRepository
  readonly refreshTokens: RefreshTokenRepository
  readonly devices: TrustedDeviceRepository
  readonly loginAttempts: LoginAttemptRepository
  readonly loginFailures: LoginFailureRepository
}

export function repositoriesOf (db: Kysely<Database>): Repositories {
  return {
    methods: new MethodRepository(db),
    backupCodes: new BackupCodeRepository(db),
    sentCodes: new SentCodeRepository(db),
    challenges: new ChallengeRepository(db),
    credentials: new CredentialRepository(db),
    sessions: new SessionRepository(db),
    refreshTokens: new RefreshTokenRepository(db),
    devices: new TrustedDeviceRepository(db),
    loginAttempts: new LoginAttemptRepository(db),
    loginFailures: new LoginFailureRepository(db),
  }
}

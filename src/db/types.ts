import type { Generated } from 'kysely'

// Times are milliseconds since the epoch in BIGINT columns and flags are 0/1
// integers: the one representation SQLite, PostgreSQL and MySQL all share.
// Repositories turn them back into numbers and booleans at their edge.

export interface UserTable {
  id: string
  username: string
  username_key: string
  email: string | null
  email_key: string | null
  password_hash: string
  created_at: number
}

export interface MfaMethodTable {
  id: string
  user_id: string
  name: string
  secret: string | null
  is_active: number
  is_primary: number
  last_totp_step: number | null
  created_at: number
}

export interface BackupCodeTable {
  id: string
  method_id: string
  user_id: string
  lookup: string
  code_hash: string
  created_at: number
}

export interface LoginAttemptTable {
  id: string
  token_hash: string
  user_id: string
  method: string
  failures: Generated<number>
  expires_at: number
  used_at: number | null
  created_at: number
}

export interface SentCodeTable {
  id: string
  user_id: string
  method: string
  code_hash: string | null
  expires_at: number
  sent_at: number
  pending_until: number | null
}

export interface UserLockTable {
  user_id: string
  failures: number
  lock_count: number
  locked_until: number
}

export interface RefreshTokenTable {
  id: string
  family_id: string
  user_id: string
  token_hash: string
  amr: string
  expires_at: number
  revoked_at: number | null
  created_at: number
}

export interface SessionTable {
  id: string
  user_id: string
  amr: string
  auth_time: number
  setup_only: number
  device_id: string | null
  created_at: number
  last_used_at: number
  expires_at: number
  revoked_at: number | null
}

export interface TrustedDeviceTable {
  id: string
  user_id: string
  token_hash: string
  label: string
  created_at: number
  last_used_at: number
  expires_at: number
}

/** One row per normalized username or email (rule 11): its primary key makes each identifier one account's. */
export interface UserIdentifierTable {
  identifier_key: string
  user_id: string
  kind: string
}

/** Wrong passwords in one window, per client address or per (login, client address) (rule 13). */
export interface LoginFailureTable {
  throttle_key: string
  scope: string
  failures: number
  expires_at: number
}

/** A challenge of a challenge–response method, bound to its method and scope (SPEC section 10). */
export interface ChallengeTable {
  id: string
  user_id: string
  method_id: string
  scope: string
  challenge_hash: string
  expires_at: number
  created_at: number
}

/** The public part of a challenge–response method's credential (a passkey's public key). */
export interface CredentialTable {
  id: string
  method_id: string
  user_id: string
  credential_key: string
  credential_id: string
  public_key: string
  sign_count: number
  transports: string | null
  created_at: number
  last_used_at: number | null
}

export interface Database {
  auth_kit_user: UserTable
  auth_kit_mfa_method: MfaMethodTable
  auth_kit_backup_code: BackupCodeTable
  auth_kit_login_attempt: LoginAttemptTable
  auth_kit_sent_code: SentCodeTable
  auth_kit_user_lock: UserLockTable
  auth_kit_refresh_token: RefreshTokenTable
  auth_kit_session: SessionTable
  auth_kit_trusted_device: TrustedDeviceTable
  auth_kit_user_identifier: UserIdentifierTable
  auth_kit_login_failure: LoginFailureTable
  auth_kit_challenge: ChallengeTable
  auth_kit_credential: CredentialTable
}

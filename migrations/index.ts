import type { Migration } from 'kysely'
import * as initial from './0001_initial.js'
import * as refreshTokenUserIndex from './0002_refresh_token_user_index.js'
import * as identifiersAndLoginThrottle from './0003_identifiers_and_login_throttle.js'
import * as sessionsAndDevices from './0004_sessions_and_devices.js'
import * as challengesAndCredentials from './0005_challenges_and_credentials.js'

// Listed here rather than read from the folder, so the packaged plugin finds
// them wherever it is installed. Names sort in the order they run.
export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_refresh_token_user_index': refreshTokenUserIndex,
  '0003_identifiers_and_login_throttle': identifiersAndLoginThrottle,
  '0004_sessions_and_devices': sessionsAndDevices,
  '0005_challenges_and_credentials': challengesAndCredentials,
}

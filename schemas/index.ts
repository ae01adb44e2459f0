import type { TSchema } from '@sinclair/typebox'
import { type ChallengeResponseFields, sharedSchemas } from './common.js'
import { loginComponentSchemas } from './login.js'
import { methodSchemas } from './methods.js'

export * from './common.js'
export * from './login.js'
export * from './methods.js'
export * from './passkey.js'

/** Every schema with an `$id`, added once to the plugin's scope; `fields`: what the configured challenge–response methods add. */
export function componentSchemas (methodNames: string[], fields: ChallengeResponseFields = {}): TSchema[] {
  return [...sharedSchemas(methodNames), ...loginComponentSchemas(fields), ...methodSchemas]
}

import type { TSchema } from '@sinclair/typebox'
import { sharedSchemas } from './common.js'
import { loginSchemas } from './login.js'
import { methodSchemas } from './methods.js'

export * from './common.js'
export * from './login.js'
export * from './methods.js'

/** Every schema with an `$id`, added once to the plugin's scope. */
export function componentSchemas (methodNames: string[]): TSchema[] {
  return [...sharedSchemas(methodNames), ...loginSchemas, ...methodSchemas]
}

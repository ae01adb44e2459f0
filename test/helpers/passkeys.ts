import type { FastifyInstance } from 'fastify'
import { post } from './app.js'
import { SoftwareAuthenticator, type AssertionJSON, type RequestOptionsJSON } from './authenticator.js'

/** The page the tests' "browser" is on, and the relying party the plugin is set up with (SPEC section 10). */
export const PASSKEY_ORIGIN = 'http://localhost:8080'
export const webauthnOption = { rpID: 'localhost', rpName: 'Auth Kit Tests', origins: [PASSKEY_ORIGIN] }

/**
 * Creates and confirms a passkey for a logged-in user with a fresh software
 * authenticator. Once it is the user's first method, `access` (a password-only
 * token) no longer passes the method routes: the answer's `access` is stepped
 * up with the passkey (POST /mfa/send/, then POST /login/step-up/).
 */
export async function enrolPasskey (app: FastifyInstance, access: string, authenticator = new SoftwareAuthenticator(PASSKEY_ORIGIN)) {
  const created = await post(app, '/mfa/', { method: 'passkey' }, access)
  if (created.status !== 201) throw new Error(`create passkey failed: ${JSON.stringify(created.body)}`)
  const confirm = await post(app, '/mfa/confirm/', { method: 'passkey', credential: authenticator.register(created.body.setup_data.options) }, access)
  if (confirm.status !== 200) throw new Error(`confirm passkey failed: ${JSON.stringify(confirm.body)}`)
  const stepped = await post(app, '/login/step-up/', { method: 'passkey', credential: authenticator.assert(await sendChallenge(app, access)) }, access)
  const raised = stepped.status === 200 ? stepped.body.access as string : access
  return { authenticator, backupCodes: created.body.backup_codes as string[], access: raised }
}

/** `POST /mfa/send/ {method: 'passkey'}`: the challenge the method routes and step-up then take a credential for. */
export async function sendChallenge (app: FastifyInstance, access: string, method = 'passkey'): Promise<RequestOptionsJSON> {
  const sent = await post(app, '/mfa/send/', { method }, access)
  if (sent.status !== 200 || sent.body.challenge === undefined) throw new Error(`send ${method} failed: ${JSON.stringify(sent.body)}`)
  return sent.body.challenge
}

/** Step 1 of a login whose method answers challenges: the ephemeral token and the challenge. */
export async function startPasskeyLogin (app: FastifyInstance, user: { username: string, password: string }) {
  const res = await post(app, '/login/', { username: user.username, password: user.password })
  if (res.status !== 200 || res.body.challenge === undefined) throw new Error(`step 1 answered no challenge: ${JSON.stringify(res.body)}`)
  return res.body as { ephemeral_token: string, method: string, methods: string[], challenge: RequestOptionsJSON }
}

/** Both steps with the passkey; throws unless step 2 answers tokens. */
export async function loginWithPasskey (app: FastifyInstance, user: { username: string, password: string }, authenticator: SoftwareAuthenticator) {
  const step1 = await startPasskeyLogin(app, user)
  const step2 = await post(app, '/login/verify/', { ephemeral_token: step1.ephemeral_token, credential: authenticator.assert(step1.challenge) })
  if (step2.status !== 200) throw new Error(`step 2 failed: ${JSON.stringify(step2.body)}`)
  return step2.body as { access: string, refresh: string }
}

export type { AssertionJSON }

import t from 'tap'
import { PasskeyHandler } from '../../src/index.js'
import { buildApp, manualClock, newUser, post } from '../helpers/app.js'
import { seededRandom } from '../helpers/security.js'
import { SoftwareAuthenticator } from '../helpers/authenticator.js'
import { PASSKEY_ORIGIN, enrolPasskey, sendChallenge, startPasskeyLogin, webauthnOption } from '../helpers/passkeys.js'

// Hostile credentials: seeded mutations of real answers (fields swapped for
// other types, bytes flipped, CBOR and client data cut short, ids of another
// length) at every route that takes a credential. Each answer is a 400 (the
// shape) or the route's AUTH_KIT_INVALID_CODE (the content): never a 500, and
// the right answer to the same challenge still works afterwards.
// Replay a failure with FUZZ_SEED=<seed>.

const SEED = Number(process.env.FUZZ_SEED ?? 20261130)
const REQUESTS = 300

const clock = manualClock()
const app = await buildApp({ now: clock.now, webauthn: webauthnOption, mfa: { handlers: [PasskeyHandler], lockoutThreshold: 1_000_000, maxAttemptsPerToken: 1_000_000 } })
t.teardown(() => app.close())

const random = seededRandom(SEED)
const HOSTILE_VALUES: unknown[] = [null, 0, -1, 1e308, true, '', ' ', '\u0000', 'A', '====', '😀', 'not base64url!', 'A'.repeat(5000), [], [1], {}, { a: 1 }, '__proto__']

/**
 * One mutation of a JSON answer, in a field the checks read: replaced by a
 * hostile value, removed, a bit flipped, or cut short.
 */
function mutate (answer: Record<string, any>, read: string[]): unknown {
  const copy = structuredClone(answer)
  const path = random.pick(read).split('.')
  const parent = path.length === 1 ? copy : copy.response
  const key = path[path.length - 1]
  const roll = random.int(4)
  if (roll === 0) parent[key] = random.pick(HOSTILE_VALUES)
  else if (roll === 1) delete parent[key]
  else if (typeof parent[key] === 'string' && /^[A-Za-z0-9_-]+$/.test(parent[key])) {
    const bytes = Buffer.from(parent[key], 'base64url')
    if (roll === 2 && bytes.length > 0) bytes[random.int(bytes.length)] ^= 1 << random.int(8)
    parent[key] = (roll === 2 ? bytes : bytes.subarray(0, random.int(bytes.length))).toString('base64url') || 'AA'
  } else parent[key] = random.pick(HOSTILE_VALUES)
  return copy
}

t.test(`${REQUESTS} mutated credentials (seed ${SEED}): 400 or the route's invalid code, never a 500`, async (t) => {
  const user = await newUser(app)
  const enrolled = await enrolPasskey(app, user.access)
  const { authenticator, access } = enrolled
  const login = await startPasskeyLogin(app, user)
  const sent = await sendChallenge(app, access)
  /** A user with a passkey created, not confirmed: what confirm is fuzzed on. */
  const setup = async () => {
    const other = await newUser(app)
    const created = await post(app, '/mfa/', { method: 'passkey' }, other.access)
    return { token: other.access, answer: new SoftwareAuthenticator(PASSKEY_ORIGIN).register(created.body.setup_data.options) }
  }
  const assertionFields = ['id', 'rawId', 'type', 'response', 'response.clientDataJSON', 'response.authenticatorData', 'response.signature']
  const routes = [
    { url: '/login/verify/', body: (credential: unknown) => ({ ephemeral_token: login.ephemeral_token, credential }), answer: authenticator.assert(login.challenge, { counter: 1_000 }) as unknown, token: undefined as string | undefined, refused: 401, read: assertionFields },
    { url: '/login/step-up/', body: (credential: unknown) => ({ credential }), answer: authenticator.assert(sent, { counter: 2_000 }) as unknown, token: access as string | undefined, refused: 403, read: assertionFields },
    { url: '/mfa/confirm/', body: (credential: unknown) => ({ method: 'passkey', credential }), ...(await setup()), refused: 403, read: ['id', 'rawId', 'type', 'response', 'response.clientDataJSON', 'response.attestationObject'] },
  ]
  const seen = new Map<string, number>()
  for (let i = 0; i < REQUESTS; i++) {
    const route = routes[i % routes.length]
    const credential = mutate(route.answer as Record<string, any>, route.read)
    const res = await post(app, route.url, route.body(credential), route.token)
    const outcome = `${res.status} ${res.body?.code}`
    seen.set(outcome, (seen.get(outcome) ?? 0) + 1)
    if (res.status === 200 && route.url === '/mfa/confirm/') {
      // With "none" attestation nothing vouches for the authenticator data at registration: a
      // changed model id, counter or key byte is what a client could have sent anyway, and
      // registers (a wrong key only locks out the one who sent it). A new user for the rest.
      Object.assign(route, await setup())
      continue
    }
    if (outcome !== '400 FST_ERR_VALIDATION' && outcome !== `${route.refused} AUTH_KIT_INVALID_CODE`) {
      t.fail(`${route.url} ${JSON.stringify(credential).slice(0, 300)} → ${outcome}`)
    }
  }
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`)
  t.ok((seen.get('400 FST_ERR_VALIDATION') ?? 0) > 0 && ((seen.get('401 AUTH_KIT_INVALID_CODE') ?? 0) + (seen.get('403 AUTH_KIT_INVALID_CODE') ?? 0)) > 0, 'both kinds of refusal were met')
  for (const route of routes) {
    const res = await post(app, route.url, route.body(route.answer), route.token)
    t.equal(res.status, 200, `${route.url}: the right answer still works; nothing was consumed`)
  }
})

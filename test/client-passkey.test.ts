import t from 'tap'
import { finishPasskey, startPasskey, type CredentialsLike, type PasskeyAssertion, type PasskeyRegistration } from '../src/client/index.js'

// SPEC section 11: the client's startPasskey() / finishPasskey() turn the
// server's WebAuthn options (JSON, base64url fields) into the browser's
// navigator.credentials calls (ArrayBuffers) and the browser's credential back
// into the JSON the server verifies. Node has no WebAuthn (no authenticator, no
// navigator.credentials), so a recording stand-in plays the browser here: the
// test checks the conversion both ways, byte for byte. test/page.browser.test.ts
// runs the same helpers against Chromium's virtual authenticator.

/** Bytes from a list of numbers, as an ArrayBuffer (what browsers hand out). */
const buffer = (...bytes: number[]): ArrayBuffer => new Uint8Array(bytes).buffer
const bytesOf = (value: unknown): number[] => Array.from(new Uint8Array(value as ArrayBuffer))

// 0xfb 0xff is "+/8=" in base64 and "-_8" in base64url: both alphabets' differences show.
const CHALLENGE = '-_8'
const USER_ID = 'AAECAw' // 00 01 02 03
const EXCLUDED = 'BAUG' // 04 05 06

/** A stand-in for navigator.credentials that records what it was asked and answers `answer`. */
function fakeCredentials (answer: unknown) {
  const calls: Array<{ kind: 'create' | 'get', options: any }> = []
  const credentials: CredentialsLike = {
    create: async (options) => { calls.push({ kind: 'create', options }); return answer },
    get: async (options) => { calls.push({ kind: 'get', options }); return answer },
  }
  return { credentials, calls }
}

const creationOptions = {
  rp: { id: 'localhost', name: 'Auth Kit Demo' },
  user: { id: USER_ID, name: 'alice', displayName: 'alice' },
  challenge: CHALLENGE,
  pubKeyCredParams: [{ type: 'public-key' as const, alg: -7 }, { type: 'public-key' as const, alg: -257 }],
  timeout: 60000,
  excludeCredentials: [{ id: EXCLUDED, type: 'public-key' as const, transports: ['internal'] }],
  authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  attestation: 'none',
}

const requestOptions = {
  challenge: CHALLENGE,
  rpId: 'localhost',
  timeout: 60000,
  allowCredentials: [{ id: EXCLUDED, type: 'public-key' as const }],
  userVerification: 'preferred',
}

function registration (overrides: Partial<PasskeyRegistration['response']> = {}): PasskeyRegistration {
  return {
    id: 'BAUG',
    rawId: buffer(4, 5, 6),
    type: 'public-key',
    authenticatorAttachment: 'platform',
    getClientExtensionResults: () => ({ credProps: { rk: true } }),
    response: {
      clientDataJSON: buffer(0x7b, 0x7d), // "{}"
      attestationObject: buffer(0xa0),
      getTransports: () => ['internal', 'hybrid'],
      getAuthenticatorData: () => buffer(1, 2),
      getPublicKey: () => buffer(0xfb, 0xff),
      getPublicKeyAlgorithm: () => -7,
      ...overrides,
    },
  }
}

function assertion (userHandle: ArrayBuffer | null): PasskeyAssertion {
  return {
    id: 'BAUG',
    rawId: new Uint8Array([9, 4, 5, 6, 9]).subarray(1, 4), // a view into a larger buffer: only its own bytes count
    type: 'public-key',
    authenticatorAttachment: null,
    getClientExtensionResults: () => ({}),
    response: { clientDataJSON: buffer(0x7b, 0x7d), authenticatorData: buffer(1, 2, 3), signature: buffer(0x30, 0xfb, 0xff), userHandle },
  }
}

t.test('startPasskey hands creation options to navigator.credentials.create() with the binary fields decoded', async (t) => {
  const { credentials, calls } = fakeCredentials(registration())
  const signal = new AbortController().signal
  await startPasskey(creationOptions, { credentials, signal })
  t.equal(calls.length, 1)
  t.equal(calls[0].kind, 'create', 'options with a user are for a new credential')
  const { publicKey } = calls[0].options
  t.equal(calls[0].options.signal, signal, 'the abort signal is passed on')
  t.same(bytesOf(publicKey.challenge), [0xfb, 0xff], 'challenge: base64url decoded')
  t.same(bytesOf(publicKey.user.id), [0, 1, 2, 3], 'user.id: base64url decoded')
  t.same({ name: publicKey.user.name, displayName: publicKey.user.displayName }, { name: 'alice', displayName: 'alice' })
  t.same(bytesOf(publicKey.excludeCredentials[0].id), [4, 5, 6], 'excludeCredentials ids decoded')
  t.same(publicKey.excludeCredentials[0].transports, ['internal'])
  t.same(publicKey.rp, creationOptions.rp, 'the other fields go as they are')
  t.same(publicKey.pubKeyCredParams, creationOptions.pubKeyCredParams)
  t.same(publicKey.authenticatorSelection, creationOptions.authenticatorSelection)
  t.equal(publicKey.attestation, 'none')
  t.equal(publicKey.timeout, 60000)
  t.equal(creationOptions.challenge, CHALLENGE, "the caller's options are not changed")
})

t.test('startPasskey hands request options to navigator.credentials.get() with the binary fields decoded', async (t) => {
  const { credentials, calls } = fakeCredentials(assertion(null))
  await startPasskey(requestOptions, { credentials })
  t.equal(calls[0].kind, 'get', 'options without a user are for an assertion')
  const { publicKey } = calls[0].options
  t.notOk('signal' in calls[0].options, 'no signal unless given')
  t.same(bytesOf(publicKey.challenge), [0xfb, 0xff])
  t.same(bytesOf(publicKey.allowCredentials[0].id), [4, 5, 6])
  t.equal(publicKey.rpId, 'localhost')
  t.equal(publicKey.userVerification, 'preferred')
})

t.test('finishPasskey makes RegistrationResponseJSON of a new credential', async (t) => {
  const { credentials } = fakeCredentials(registration())
  const json = finishPasskey(await startPasskey(creationOptions, { credentials }))
  t.same(json, {
    id: 'BAUG',
    rawId: 'BAUG',
    type: 'public-key',
    authenticatorAttachment: 'platform',
    clientExtensionResults: { credProps: { rk: true } },
    response: {
      clientDataJSON: 'e30',
      attestationObject: 'oA',
      authenticatorData: 'AQI',
      transports: ['internal', 'hybrid'],
      publicKeyAlgorithm: -7,
      publicKey: '-_8',
    },
  })
  t.same(JSON.parse(JSON.stringify(json)), json, 'plain JSON: it survives JSON.stringify as it is')
})

t.test('finishPasskey leaves out what an older browser does not give', async (t) => {
  const credential = registration({ getTransports: undefined, getAuthenticatorData: undefined, getPublicKey: () => null, getPublicKeyAlgorithm: undefined })
  t.same(finishPasskey(credential).response, { clientDataJSON: 'e30', attestationObject: 'oA' })
})

t.test('finishPasskey makes AuthenticationResponseJSON of an assertion', async (t) => {
  const withHandle = finishPasskey(assertion(buffer(0, 1, 2, 3)))
  t.same(withHandle, {
    id: 'BAUG',
    rawId: 'BAUG',
    type: 'public-key',
    clientExtensionResults: {},
    response: { clientDataJSON: 'e30', authenticatorData: 'AQID', signature: 'MPv_', userHandle: USER_ID },
  }, 'a null authenticatorAttachment is left out; a view is read over its own bytes only')
  t.notOk('userHandle' in finishPasskey(assertion(null)).response, 'no userHandle: none in the JSON')
})

t.test('startPasskey refuses options whose binary fields are not base64url, before asking the browser', async (t) => {
  const { credentials, calls } = fakeCredentials(registration())
  await t.rejects(startPasskey({ ...creationOptions, challenge: 'a+b/' }, { credentials }), { name: 'TypeError', message: 'passkey: challenge is not base64url' })
  await t.rejects(startPasskey({ ...creationOptions, user: { ...creationOptions.user, id: 'x' } }, { credentials }), { message: 'passkey: user.id is not base64url' }, 'a length no bytes can have')
  await t.rejects(startPasskey({ ...requestOptions, allowCredentials: [{ id: 'ab!c', type: 'public-key' }] }, { credentials }), { message: 'passkey: allowCredentials[0].id is not base64url' })
  t.equal(calls.length, 0, 'the browser was never asked')
  await t.resolves(startPasskey({ ...requestOptions, challenge: '-_8=' }, { credentials }), 'padding is tolerated')
})

t.test('startPasskey uses the global navigator.credentials, and says so when there is none', async (t) => {
  const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator')
  t.teardown(() => { if (had !== undefined) Object.defineProperty(globalThis, 'navigator', had); else delete (globalThis as any).navigator })
  const { credentials, calls } = fakeCredentials(assertion(null))
  Object.defineProperty(globalThis, 'navigator', { value: { credentials }, configurable: true, writable: true })
  await startPasskey(requestOptions)
  t.equal(calls.length, 1, 'the global one was used')
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true })
  await t.rejects(startPasskey(requestOptions), { message: 'passkey: WebAuthn is not available here (no navigator.credentials)' })
})

t.test('startPasskey fails clearly when the browser answers no credential, and passes its own errors on', async (t) => {
  await t.rejects(startPasskey(requestOptions, { credentials: fakeCredentials(null).credentials }), { message: 'passkey: the browser gave no credential' })
  const cancelled = Object.assign(new Error('The operation either timed out or was not allowed.'), { name: 'NotAllowedError' })
  const refusing: CredentialsLike = { create: async () => { throw cancelled }, get: async () => { throw cancelled } }
  await t.rejects(startPasskey(creationOptions, { credentials: refusing }), cancelled, "the browser's error, unchanged")
})

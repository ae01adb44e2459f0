import { Type, type TSchema } from '@sinclair/typebox'

// The JSON forms of WebAuthn Level 3 (section 5.1.8 toJSON(), 5.1.9 and 5.1.10
// parse…FromJSON()): what a browser's `PublicKeyCredential.toJSON()` gives and
// what `PublicKeyCredential.parseCreationOptionsFromJSON()` /
// `parseRequestOptionsFromJSON()` take, binary values as base64url. Request
// shapes type every field they know and admit fields a later browser may add
// (a login must not break on a new browser); the plugin reads only the known ones.

/** base64url, as `toJSON()` writes binary values (RFC 4648 section 5; padding tolerated). */
function Base64Url (maxLength: number, description?: string): TSchema {
  return Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+={0,2}$', ...(description === undefined ? {} : { description }) })
}

const Transports = Type.Array(Type.String({ maxLength: 32 }), { maxItems: 16, description: 'Transport hints (`internal`, `usb`, `nfc`, `ble`, `hybrid`).' })
const CredentialDescriptor = Type.Object({
  id: Base64Url(1400),
  type: Type.String({ description: '`public-key`.' }),
  transports: Type.Optional(Transports),
}, { additionalProperties: true })
const ClientExtensionResults = Type.Object({}, { additionalProperties: true, description: 'Client extension outputs (`getClientExtensionResults()`).' })
const credentialCommon = {
  id: Base64Url(1400, 'The credential id.'),
  rawId: Base64Url(1400, 'The credential id again (the same text as `id`).'),
  type: Type.Literal('public-key'),
  authenticatorAttachment: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Null()])),
  clientExtensionResults: Type.Optional(ClientExtensionResults),
}

/** `credential` at `POST /mfa/confirm/`: the browser's `RegistrationResponseJSON`. */
export const PasskeyRegistrationResponse = Type.Object({
  ...credentialCommon,
  response: Type.Object({
    clientDataJSON: Base64Url(4096),
    attestationObject: Base64Url(32768),
    authenticatorData: Type.Optional(Base64Url(32768)),
    transports: Type.Optional(Transports),
    publicKeyAlgorithm: Type.Optional(Type.Integer()),
    publicKey: Type.Optional(Base64Url(4096)),
  }, { additionalProperties: true }),
}, {
  title: 'PasskeyRegistrationResponse',
  additionalProperties: true,
  description: 'What `navigator.credentials.create()` gave, as `PublicKeyCredential.toJSON()` writes it (WebAuthn `RegistrationResponseJSON`).',
})

/** `credential` at login verify, step-up and the method routes: the browser's `AuthenticationResponseJSON`. */
export const PasskeyAuthenticationResponse = Type.Object({
  ...credentialCommon,
  response: Type.Object({
    clientDataJSON: Base64Url(4096),
    authenticatorData: Base64Url(32768),
    signature: Base64Url(2048),
    userHandle: Type.Optional(Type.Union([Base64Url(512), Type.Null()])),
  }, { additionalProperties: true }),
}, {
  title: 'PasskeyAuthenticationResponse',
  additionalProperties: true,
  description: 'What `navigator.credentials.get()` gave for the `challenge` the server answered, as `PublicKeyCredential.toJSON()` writes it (WebAuthn `AuthenticationResponseJSON`).',
})

const EXAMPLE_CHALLENGE = 'mWcN1xRyLr9k0sQ4eJ2tVbH7uA5fZ3pD8gK6oYi1wXc'

/** `challenge`: the options for `navigator.credentials.get()` (WebAuthn `PublicKeyCredentialRequestOptionsJSON`). */
export const PasskeyRequestOptions = Type.Object({
  challenge: Base64Url(128),
  timeout: Type.Optional(Type.Integer({ description: 'Milliseconds the browser may wait.' })),
  rpId: Type.Optional(Type.String()),
  allowCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
  userVerification: Type.Optional(Type.String()),
  hints: Type.Optional(Type.Array(Type.String())),
  extensions: Type.Optional(Type.Object({}, { additionalProperties: true })),
}, {
  title: 'PasskeyRequestOptions',
  additionalProperties: true,
  description: 'Hand it to `PublicKeyCredential.parseRequestOptionsFromJSON()`, then to `navigator.credentials.get({ publicKey })`; send the answer\'s `toJSON()` as `credential`. Good for one right answer, within `mfa.ephemeralTokenExpiry`.',
})

/** `setup_data.options`: the options for `navigator.credentials.create()` (WebAuthn `PublicKeyCredentialCreationOptionsJSON`). */
export const PasskeyCreationOptions = Type.Object({
  rp: Type.Object({ name: Type.String(), id: Type.Optional(Type.String()) }, { additionalProperties: true }),
  user: Type.Object({ id: Base64Url(128), name: Type.String(), displayName: Type.String() }, { additionalProperties: true }),
  challenge: Base64Url(128),
  pubKeyCredParams: Type.Array(Type.Object({ alg: Type.Integer(), type: Type.String() }, { additionalProperties: true })),
  timeout: Type.Optional(Type.Integer({ description: 'Milliseconds the browser may wait.' })),
  excludeCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
  authenticatorSelection: Type.Optional(Type.Object({
    authenticatorAttachment: Type.Optional(Type.String()),
    requireResidentKey: Type.Optional(Type.Boolean()),
    residentKey: Type.Optional(Type.String()),
    userVerification: Type.Optional(Type.String()),
  }, { additionalProperties: true })),
  hints: Type.Optional(Type.Array(Type.String())),
  attestation: Type.Optional(Type.String()),
  attestationFormats: Type.Optional(Type.Array(Type.String())),
  extensions: Type.Optional(Type.Object({}, { additionalProperties: true })),
}, {
  title: 'PasskeyCreationOptions',
  additionalProperties: true,
  description: 'Hand it to `PublicKeyCredential.parseCreationOptionsFromJSON()`, then to `navigator.credentials.create({ publicKey })`; send the answer\'s `toJSON()` as `credential` to POST /mfa/confirm/. Good for one right answer, within `mfa.ephemeralTokenExpiry`.',
})

/** What `setup_data.options` looks like, for the documented example of POST /mfa/. */
const EXAMPLE_CREATION_OPTIONS = {
  rp: { name: 'My App', id: 'example.com' },
  user: { id: 'q1w2e3r4t5y6u7i8o9p0aQ', name: 'alice', displayName: 'alice' },
  challenge: EXAMPLE_CHALLENGE,
  pubKeyCredParams: [{ alg: -8, type: 'public-key' }, { alg: -7, type: 'public-key' }, { alg: -257, type: 'public-key' }],
  timeout: 600000,
  excludeCredentials: [],
  authenticatorSelection: { residentKey: 'preferred', requireResidentKey: false, userVerification: 'discouraged' },
  attestation: 'none',
}

/** `setup_data` of `POST /mfa/ {method: 'passkey'}`. */
export const PasskeySetupData = Type.Object({ options: PasskeyCreationOptions }, {
  title: 'PasskeySetupData',
  description: 'Create the passkey with `options`, then confirm it with POST /mfa/confirm/ `{method: "passkey", credential}`.',
  examples: [{ options: EXAMPLE_CREATION_OPTIONS }],
})

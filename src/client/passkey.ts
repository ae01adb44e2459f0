/**
 * Browser helpers around the two WebAuthn calls (SPEC sections 10 and 11).
 * The server speaks JSON, where every binary field is base64url (RFC 4648
 * §5, no padding); `navigator.credentials.create()` and `.get()` want and
 * give `ArrayBuffer`s. `startPasskey` turns the server's options into the
 * browser call, `finishPasskey` turns the browser's credential into the JSON
 * the server verifies:
 *
 *   const credential = finishPasskey(await startPasskey(setup_data.options))
 *   await client.confirmMethod({ method: 'passkey', credential })
 *
 * The JSON shapes are those of WebAuthn Level 3 (§5.1.8 `toJSON()`, §5.4
 * `PublicKeyCredentialCreationOptionsJSON`, §5.5 `…RequestOptionsJSON`), the
 * ones `@simplewebauthn/server` makes and checks. The options are the
 * server's own schemas (`Static<>`, type-only imports); the credentials are
 * written out here, not taken from the DOM library, so the client's types
 * compile in Node too, and the request bodies' `credential` types accept them.
 * Nothing but the globals `atob`, `btoa` and `navigator` is used.
 */
import type { Static } from '@sinclair/typebox'
import type { PasskeyCreationOptions, PasskeyRequestOptions } from '../../schemas/passkey.js'

/** Bytes as base64url without padding (RFC 4648 §5). */
export type Base64URLString = string

/** One credential in `allowCredentials` or `excludeCredentials`. */
export type PublicKeyCredentialDescriptorJSON = NonNullable<PublicKeyCredentialRequestOptionsJSON['allowCredentials']>[number]

/** What `POST /mfa/ {method: 'passkey'}` answers in `setup_data.options` (the server's schema, schemas/passkey.ts). */
export type PublicKeyCredentialCreationOptionsJSON = Static<typeof PasskeyCreationOptions>

/** What a passkey attempt's `challenge` is (login, change-method, `POST /mfa/send/`; the server's schema). */
export type PublicKeyCredentialRequestOptionsJSON = Static<typeof PasskeyRequestOptions>

/** The `credential` of `POST /mfa/confirm/`. */
export interface RegistrationResponseJSON {
  id: Base64URLString
  rawId: Base64URLString
  type: 'public-key'
  response: {
    clientDataJSON: Base64URLString
    attestationObject: Base64URLString
    authenticatorData?: Base64URLString
    transports?: string[]
    publicKeyAlgorithm?: number
    publicKey?: Base64URLString
  }
  authenticatorAttachment?: string
  clientExtensionResults: Record<string, unknown>
}

/** The `credential` of `POST /login/verify/`, `/login/step-up/` and the method routes. */
export interface AuthenticationResponseJSON {
  id: Base64URLString
  rawId: Base64URLString
  type: 'public-key'
  response: {
    clientDataJSON: Base64URLString
    authenticatorData: Base64URLString
    signature: Base64URLString
    userHandle?: Base64URLString
  }
  authenticatorAttachment?: string
  clientExtensionResults: Record<string, unknown>
}

type Bytes = ArrayBuffer | ArrayBufferView

/** The parts of a browser `PublicKeyCredential` the helpers read. */
interface CredentialBase {
  id: string
  rawId: Bytes
  type: string
  authenticatorAttachment?: string | null
  getClientExtensionResults (): Record<string, unknown>
}

/** A credential made by `navigator.credentials.create()`. */
export interface PasskeyRegistration extends CredentialBase {
  response: {
    clientDataJSON: Bytes
    attestationObject: Bytes
    getTransports? (): string[]
    getAuthenticatorData? (): Bytes
    getPublicKey? (): Bytes | null
    getPublicKeyAlgorithm? (): number
  }
}

/** An assertion made by `navigator.credentials.get()`. */
export interface PasskeyAssertion extends CredentialBase {
  response: {
    clientDataJSON: Bytes
    authenticatorData: Bytes
    signature: Bytes
    userHandle: Bytes | null
  }
}

/** `navigator.credentials`, as far as the helpers use it. */
export interface CredentialsLike {
  create (options: { publicKey: unknown, signal?: AbortSignal }): Promise<unknown>
  get (options: { publicKey: unknown, signal?: AbortSignal }): Promise<unknown>
}

export interface PasskeyInit {
  /** Cancels the browser's prompt. */
  signal?: AbortSignal
  /** Default: `navigator.credentials`. */
  credentials?: CredentialsLike
}

const BASE64URL = /^[A-Za-z0-9_-]*$/

/** base64url (padding tolerated) to bytes; a TypeError names the field that is not base64url. */
export function base64urlToBytes (value: unknown, field: string): ArrayBuffer {
  const text = typeof value === 'string' ? value.replace(/=+$/, '') : null
  if (text === null || !BASE64URL.test(text) || text.length % 4 === 1) throw new TypeError(`passkey: ${field} is not base64url`)
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '='))
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes.buffer
}

/** Bytes to base64url without padding. */
export function bytesToBase64url (value: Bytes): Base64URLString {
  const bytes = ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value)
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

const descriptors = (list: PublicKeyCredentialDescriptorJSON[] | undefined, field: string) =>
  list?.map((entry, i) => ({ ...entry, id: base64urlToBytes(entry.id, `${field}[${i}].id`) }))

function credentialsOf (init: PasskeyInit): CredentialsLike {
  const credentials = init.credentials ?? (globalThis as { navigator?: { credentials?: CredentialsLike } }).navigator?.credentials
  if (credentials === undefined) throw new Error('passkey: WebAuthn is not available here (no navigator.credentials)')
  return credentials
}

/**
 * Asks the browser for a passkey: creation options (`setup_data.options`,
 * which have `user`) go to `navigator.credentials.create()`, request options
 * (a `challenge` of the server) to `.get()`. Resolves to the browser's
 * credential, for {@link finishPasskey}.
 * @throws TypeError when a binary field of `options` is not base64url (the browser is not called);
 *   the browser's own `DOMException` (e.g. `NotAllowedError` when the person cancels);
 *   Error when there is no `navigator.credentials` or the browser answers no credential.
 */
export async function startPasskey (options: PublicKeyCredentialCreationOptionsJSON, init?: PasskeyInit): Promise<PasskeyRegistration>
export async function startPasskey (options: PublicKeyCredentialRequestOptionsJSON, init?: PasskeyInit): Promise<PasskeyAssertion>
export async function startPasskey (options: PublicKeyCredentialCreationOptionsJSON | PublicKeyCredentialRequestOptionsJSON, init: PasskeyInit = {}): Promise<PasskeyRegistration | PasskeyAssertion> {
  const signal = init.signal === undefined ? {} : { signal: init.signal }
  let credential: unknown
  if ('user' in options) {
    const publicKey = {
      ...options,
      challenge: base64urlToBytes(options.challenge, 'challenge'),
      user: { ...options.user, id: base64urlToBytes(options.user?.id, 'user.id') },
      ...(options.excludeCredentials === undefined ? {} : { excludeCredentials: descriptors(options.excludeCredentials, 'excludeCredentials') }),
    }
    credential = await credentialsOf(init).create({ publicKey, ...signal })
  } else {
    const publicKey = {
      ...options,
      challenge: base64urlToBytes(options.challenge, 'challenge'),
      ...(options.allowCredentials === undefined ? {} : { allowCredentials: descriptors(options.allowCredentials, 'allowCredentials') }),
    }
    credential = await credentialsOf(init).get({ publicKey, ...signal })
  }
  if (credential === null || typeof credential !== 'object') throw new Error('passkey: the browser gave no credential')
  return credential as PasskeyRegistration | PasskeyAssertion
}

/**
 * The browser's credential as the JSON the server takes in `credential`:
 * a new credential as `RegistrationResponseJSON`, an assertion as
 * `AuthenticationResponseJSON`.
 */
export function finishPasskey (credential: PasskeyRegistration): RegistrationResponseJSON
export function finishPasskey (credential: PasskeyAssertion): AuthenticationResponseJSON
export function finishPasskey (credential: PasskeyRegistration | PasskeyAssertion): RegistrationResponseJSON | AuthenticationResponseJSON {
  const common = {
    id: credential.id,
    rawId: bytesToBase64url(credential.rawId),
    type: 'public-key' as const,
    clientExtensionResults: credential.getClientExtensionResults?.() ?? {},
    ...(typeof credential.authenticatorAttachment === 'string' ? { authenticatorAttachment: credential.authenticatorAttachment } : {}),
  }
  if ('attestationObject' in credential.response) {
    const made = credential.response
    const publicKey = made.getPublicKey?.() ?? null
    return {
      ...common,
      response: {
        clientDataJSON: bytesToBase64url(made.clientDataJSON),
        attestationObject: bytesToBase64url(made.attestationObject),
        ...(made.getAuthenticatorData === undefined ? {} : { authenticatorData: bytesToBase64url(made.getAuthenticatorData()) }),
        ...(made.getTransports === undefined ? {} : { transports: made.getTransports() }),
        ...(made.getPublicKeyAlgorithm === undefined ? {} : { publicKeyAlgorithm: made.getPublicKeyAlgorithm() }),
        ...(publicKey === null ? {} : { publicKey: bytesToBase64url(publicKey) }),
      },
    }
  }
  const signed = (credential as PasskeyAssertion).response
  return {
    ...common,
    response: {
      clientDataJSON: bytesToBase64url(signed.clientDataJSON),
      authenticatorData: bytesToBase64url(signed.authenticatorData),
      signature: bytesToBase64url(signed.signature),
      ...(signed.userHandle === null || signed.userHandle === undefined ? {} : { userHandle: bytesToBase64url(signed.userHandle) }),
    },
  }
}

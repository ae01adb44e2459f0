import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'

// A software WebAuthn authenticator, and the browser around it, for tests that
// cannot drive a real one (test/passkeys/*.browser.test.ts drives Chromium's).
// It answers the JSON options the plugin gives the way a browser's
// `PublicKeyCredential.toJSON()` writes an answer (WebAuthn Level 3): an ES256
// (P-256) key from node:crypto, "none" attestation, a signature counter, and
// the flags of the authenticator data. Each field a test wants to get wrong
// (origin, rpID, presence, counter, challenge) can be overridden.

/** The JSON a browser writes for `navigator.credentials.create()` (RegistrationResponseJSON). */
export interface RegistrationJSON {
  id: string
  rawId: string
  type: 'public-key'
  response: { clientDataJSON: string, attestationObject: string, authenticatorData: string, transports: string[], publicKeyAlgorithm: number, publicKey: string }
  authenticatorAttachment: string
  clientExtensionResults: Record<string, unknown>
}

/** The JSON a browser writes for `navigator.credentials.get()` (AuthenticationResponseJSON). */
export interface AssertionJSON {
  id: string
  rawId: string
  type: 'public-key'
  response: { clientDataJSON: string, authenticatorData: string, signature: string, userHandle?: string }
  authenticatorAttachment: string
  clientExtensionResults: Record<string, unknown>
}

/** What a test may get wrong in one answer. */
export interface Tampering {
  /** The origin the "browser" puts in the client data. */
  origin?: string
  /** The relying party id whose hash is in the authenticator data. */
  rpID?: string
  /** The challenge signed (default: the one in the options). */
  challenge?: string
  /** User presence (UP flag); default true. */
  userPresent?: boolean
  /** The signature counter reported (default: one more than the last). */
  counter?: number
  /** Answer even if the options do not list this credential (a browser would not). */
  ignoreAllowList?: boolean
  /** Client data of an answer made in a frame of another site: `crossOrigin: true` and this `topOrigin`. */
  framedBy?: string
}

/** The parts of PublicKeyCredentialCreationOptionsJSON an authenticator reads. */
export interface CreationOptionsJSON { challenge: string, rp: { id?: string, name: string }, pubKeyCredParams: Array<{ alg: number }> }
/** The parts of PublicKeyCredentialRequestOptionsJSON an authenticator reads. */
export interface RequestOptionsJSON { challenge: string, rpId?: string, allowCredentials?: Array<{ id: string }> }

// Authenticator data flags, WebAuthn Level 3 section 6.1.
const FLAG_UP = 0x01
const FLAG_AT = 0x40
const COSE_ES256 = -7

function b64url (bytes: Buffer | Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

function sha256 (data: Buffer | string): Buffer {
  return createHash('sha256').update(data).digest()
}

function uint32 (n: number): Buffer {
  const out = Buffer.alloc(4)
  out.writeUInt32BE(n >>> 0)
  return out
}

/** A CBOR value: what the few structures of WebAuthn need (RFC 8949). */
type Cbor = number | string | Buffer | Cbor[] | Map<Cbor, Cbor>

function cborHead (major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length])
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length])
  if (length < 0x10000) return Buffer.from([(major << 5) | 25, length >> 8, length & 0xff])
  return Buffer.concat([Buffer.from([(major << 5) | 26]), uint32(length)])
}

export function cbor (value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value)
  if (typeof value === 'string') {
    const text = Buffer.from(value, 'utf8')
    return Buffer.concat([cborHead(3, text.length), text])
  }
  if (Buffer.isBuffer(value)) return Buffer.concat([cborHead(2, value.length), value])
  if (Array.isArray(value)) return Buffer.concat([cborHead(4, value.length), ...value.map(cbor)])
  return Buffer.concat([cborHead(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])])
}

/** The client data a browser makes (section 5.8.1), base64url. */
function clientData (type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string, framedBy?: string): string {
  const framing = framedBy === undefined ? { crossOrigin: false } : { crossOrigin: true, topOrigin: framedBy }
  return b64url(Buffer.from(JSON.stringify({ type, challenge, origin, ...framing }), 'utf8'))
}

/** One authenticator holding one ES256 credential, as a browser would present it. */
export class SoftwareAuthenticator {
  readonly credentialId: Buffer
  private readonly privateKey: KeyObject
  private readonly publicKey: KeyObject
  /** The signature counter after the last answer. */
  counter = 0

  /**
   * `origin`: the page the "browser" is on, e.g. http://localhost:3000.
   * `credentialIdBytes`: the length of the credential id (WebAuthn allows 16 to 1023).
   */
  constructor (readonly origin: string, { credentialIdBytes = 32 }: { credentialIdBytes?: number } = {}) {
    this.credentialId = randomBytes(credentialIdBytes)
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    this.privateKey = pair.privateKey
    this.publicKey = pair.publicKey
  }

  get id (): string { return b64url(this.credentialId) }

  /** The credential's public key as a COSE_Key (RFC 9053 section 7.1.1): EC2, P-256, ES256. */
  private coseKey (): Buffer {
    const jwk = this.publicKey.export({ format: 'jwk' })
    return cbor(new Map<Cbor, Cbor>([[1, 2], [3, COSE_ES256], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]))
  }

  private authenticatorData (rpID: string, flags: number, counter: number, attested?: Buffer): Buffer {
    return Buffer.concat([sha256(rpID), Buffer.from([flags]), uint32(counter), ...(attested === undefined ? [] : [attested])])
  }

  /** `navigator.credentials.create({ publicKey: options })`, answered with "none" attestation. */
  register (options: CreationOptionsJSON, tampering: Tampering = {}): RegistrationJSON {
    if (!options.pubKeyCredParams.some((p) => p.alg === COSE_ES256)) throw new Error('the relying party does not take ES256')
    const rpID = tampering.rpID ?? options.rp.id ?? new URL(this.origin).hostname
    const counter = tampering.counter ?? this.counter
    const attested = Buffer.concat([Buffer.alloc(16), Buffer.from([this.credentialId.length >> 8, this.credentialId.length & 0xff]), this.credentialId, this.coseKey()])
    const flags = FLAG_AT | (tampering.userPresent === false ? 0 : FLAG_UP)
    const authData = this.authenticatorData(rpID, flags, counter, attested)
    const attestationObject = cbor(new Map<Cbor, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]))
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: clientData('webauthn.create', tampering.challenge ?? options.challenge, tampering.origin ?? this.origin, tampering.framedBy),
        attestationObject: b64url(attestationObject),
        authenticatorData: b64url(authData),
        transports: ['internal'],
        publicKeyAlgorithm: COSE_ES256,
        publicKey: b64url(this.publicKey.export({ format: 'der', type: 'spki' })),
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    }
  }

  /** `navigator.credentials.get({ publicKey: options })`: an assertion over the options' challenge; the counter moves on. */
  assert (options: RequestOptionsJSON, tampering: Tampering = {}): AssertionJSON {
    const allowed = options.allowCredentials ?? []
    if (tampering.ignoreAllowList !== true && allowed.length > 0 && !allowed.some((c) => c.id === this.id)) {
      throw new Error('the options do not allow this credential (a browser would find no passkey)')
    }
    const rpID = tampering.rpID ?? options.rpId ?? new URL(this.origin).hostname
    const counter = tampering.counter ?? this.counter + 1
    if (tampering.counter === undefined) this.counter = counter
    const authData = this.authenticatorData(rpID, tampering.userPresent === false ? 0 : FLAG_UP, counter)
    const clientDataJSON = clientData('webauthn.get', tampering.challenge ?? options.challenge, tampering.origin ?? this.origin, tampering.framedBy)
    // ES256 signatures are ASN.1 DER, as node:crypto writes them (WebAuthn section 6.5.5).
    const signature = sign('sha256', Buffer.concat([authData, sha256(Buffer.from(clientDataJSON, 'base64url'))]), this.privateKey)
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON, authenticatorData: b64url(authData), signature: b64url(signature) },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    }
  }
}

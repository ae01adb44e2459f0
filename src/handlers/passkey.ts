import { Type } from '@sinclair/typebox'
import type {
  AuthenticationResponseJSON, AuthenticatorTransportFuture, PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { type ChallengeScope, type Dispatch, MfaHandler, type WebAuthnSettings, handlerContext } from './base.js'
import {
  PasskeyAuthenticationResponse, PasskeyCreationOptions, PasskeyRegistrationResponse, PasskeyRequestOptions, PasskeySetupData,
} from '../../schemas/passkey.js'

let webauthnLibrary: Promise<typeof import('@simplewebauthn/server')> | undefined

/**
 * @simplewebauthn/server, loaded by the first passkey operation: with its
 * ASN.1 and X.509 dependencies it holds about 3 MB of V8 heap and 10 MB of
 * RSS, which an application without passkeys (or before its first) should
 * not carry.
 */
function webauthn (): Promise<typeof import('@simplewebauthn/server')> {
  return (webauthnLibrary ??= import('@simplewebauthn/server'))
}

/** Longest credential id and public key stored, in base64url characters (WebAuthn ids are at most 1023 bytes). */
const MAX_STORED_LENGTH = 1400
/** Longest transport list stored, in characters. */
const MAX_TRANSPORTS_LENGTH = 255

/**
 * The `challenge` of a WebAuthn response's client data, or undefined if it
 * cannot be read or the answer was made in a frame of another site: client data
 * with `crossOrigin: true` or a `topOrigin` (WebAuthn Level 3, section 7.1 step
 * 12 and 7.2 step 10) is refused, since this relying party is never embedded
 * (@simplewebauthn/server leaves both fields to the caller).
 */
function clientChallengeOf (credential: unknown): string | undefined {
  try {
    const encoded = (credential as { response?: { clientDataJSON?: unknown } }).response?.clientDataJSON
    if (typeof encoded !== 'string') return undefined
    const clientData = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'))
    if (clientData === null || typeof clientData !== 'object') return undefined
    if (clientData.crossOrigin === true || clientData.topOrigin !== undefined) return undefined
    const challenge = clientData.challenge
    return typeof challenge === 'string' && challenge !== '' ? challenge : undefined
  } catch {
    return undefined
  }
}

/** Fits the transports the authenticator reported into their column, dropping what does not. */
function storableTransports (transports: readonly string[] | undefined): string[] {
  const kept: string[] = []
  for (const transport of transports ?? []) {
    if (!/^[a-z0-9-]{1,32}$/.test(transport)) continue
    if ([...kept, transport].join(',').length > MAX_TRANSPORTS_LENGTH) break
    kept.push(transport)
  }
  return kept
}

/**
 * A passkey (a WebAuthn credential) as a second factor, SPEC section 10:
 * phishing-resistant, because the browser binds each answer to the site's
 * origin. Registration and assertions are checked by @simplewebauthn/server
 * against the `webauthn` option (origin, relying party id, user presence, the
 * signature counter); only the credential's public key is stored.
 *
 * A challenge–response method: it "dispatches" a challenge, never a mail, and
 * its routes take `credential` where others take `code`. Backup codes work as
 * for any method.
 */
export class PasskeyHandler extends MfaHandler {
  static override NAME = 'passkey'
  static override DISPLAY_NAME = 'Passkey'
  static override REQUIRES_DISPATCH = true
  static override SETUP_RESPONSE_MESSAGE = 'Create the passkey with these options, then confirm it with the credential.'
  static override setupDataSchema = PasskeySetupData
  static override challengeSchema = PasskeyRequestOptions
  static override sendChallengeSchema = Type.Union([PasskeyRequestOptions, PasskeyCreationOptions], {
    description: 'For an active passkey: the options for `navigator.credentials.get()`, whose answer the method routes and step-up take as `credential`. '
      + 'For a passkey not yet confirmed: fresh options for `navigator.credentials.create()`, whose answer POST /mfa/confirm/ takes.',
  })
  static override credentialSchema = PasskeyAuthenticationResponse
  static override setupCredentialSchema = PasskeyRegistrationResponse
  /** Marks handlers that need the `webauthn` option; registration checks it. */
  static USES_WEBAUTHN = true

  /** The `webauthn` option; registration makes sure it is set. */
  private get relyingParty (): WebAuthnSettings {
    const settings = handlerContext(this).services.webauthn
    if (settings === null) throw new Error('fastify-auth-kit: PasskeyHandler needs the "webauthn" option')
    return settings
  }

  /** Milliseconds the browser may take: the challenge's own life. */
  private get timeout (): number {
    return handlerContext(this).services.challengeExpiry * 1000
  }

  /** A passkey has no one-time codes: it answers challenges. */
  override async getOtpCode (): Promise<string> {
    throw new Error('fastify-auth-kit: a passkey has no one-time codes; it answers challenges')
  }

  /** No typed code is a passkey's own: only its backup codes are typed. */
  override async validateOtpCode (_code: string): Promise<boolean> {
    return false
  }

  /** Nothing is sent, so the resend cooldown does not apply: the options, at once. */
  override async setUp (): Promise<{ options: PublicKeyCredentialCreationOptionsJSON }> {
    return this.initializeMethod()
  }

  override async initializeMethod (): Promise<{ options: PublicKeyCredentialCreationOptionsJSON }> {
    return { options: await this.creationOptions() }
  }

  /**
   * A challenge for the scope: request options for an active passkey; for one
   * not yet confirmed (`POST /mfa/send/`), fresh creation options, replacing
   * the setup challenge (the one of `POST /mfa/` may have expired).
   */
  override async dispatch (scope: ChallengeScope, _options: { strict: boolean }): Promise<Dispatch> {
    if (!this.method.isActive) return { detail: 'Create the passkey with the new options, then confirm it.', challenge: await this.creationOptions() }
    return { detail: 'Answer the challenge with your passkey.', challenge: await this.requestOptions(scope) }
  }

  override async validateCredential (credential: unknown, scope: ChallengeScope): Promise<boolean> {
    return scope.kind === 'setup' ? this.register(credential) : this.assert(credential, scope)
  }

  private async creationOptions (): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const { rpID, rpName } = this.relyingParty
    const { generateRegistrationOptions } = await webauthn()
    const challenge = await this.issueChallenge({ kind: 'setup' })
    const name = String((this.user as Record<string, unknown>).username ?? this.user.id)
    return generateRegistrationOptions({
      rpName,
      rpID,
      userName: name,
      userDisplayName: name,
      challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
      timeout: this.timeout,
      attestationType: 'none',
      // A second factor after the password: presence is enough, no PIN or biometric is asked for.
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'discouraged' },
    })
  }

  private async requestOptions (scope: ChallengeScope): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const { generateAuthenticationOptions } = await webauthn()
    const stored = await this.storedCredential()
    const challenge = await this.issueChallenge(scope)
    return generateAuthenticationOptions({
      rpID: this.relyingParty.rpID,
      challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
      timeout: this.timeout,
      userVerification: 'discouraged',
      allowCredentials: stored === null ? [] : [{ id: stored.id, transports: stored.transports as AuthenticatorTransportFuture[] }],
    })
  }

  /** `POST /mfa/confirm/`: a registration answering the setup challenge; its public key is stored. */
  private async register (credential: unknown): Promise<boolean> {
    const scope: ChallengeScope = { kind: 'setup' }
    const challenge = clientChallengeOf(credential)
    if (challenge === undefined || !(await this.challengeIsLive(scope, challenge))) return false
    const { rpID, origins } = this.relyingParty
    const { verifyRegistrationResponse } = await webauthn()
    let registered
    try {
      const result = await verifyRegistrationResponse({
        response: credential as RegistrationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: origins,
        expectedRPID: rpID,
        requireUserPresence: true,
        requireUserVerification: false,
      })
      if (!result.verified) return false
      registered = result.registrationInfo.credential
    } catch {
      // Whatever the library refused (origin, rpID, flags, a malformed answer) is a wrong credential.
      return false
    }
    const publicKey = Buffer.from(registered.publicKey).toString('base64url')
    if (registered.id.length > MAX_STORED_LENGTH || publicKey.length > MAX_STORED_LENGTH) return false
    const stored = await this.storeCredential({ id: registered.id, publicKey, counter: registered.counter, transports: storableTransports(registered.transports) })
    return stored && this.consumeChallenge(scope, challenge)
  }

  /** Login verify, step-up and the method routes: an assertion of this method's credential answering the scope's challenge. */
  private async assert (credential: unknown, scope: ChallengeScope): Promise<boolean> {
    const stored = await this.storedCredential()
    const response = credential as Partial<AuthenticationResponseJSON> | null
    // Another credential (another user's, say) is refused before its signature is looked at.
    if (stored === null || response === null || typeof response !== 'object' || response.id !== stored.id || response.rawId !== stored.id) return false
    const challenge = clientChallengeOf(credential)
    if (challenge === undefined || !(await this.challengeIsLive(scope, challenge))) return false
    const { rpID, origins } = this.relyingParty
    const { verifyAuthenticationResponse } = await webauthn()
    let newCounter: number
    try {
      const result = await verifyAuthenticationResponse({
        response: credential as AuthenticationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: origins,
        expectedRPID: rpID,
        credential: { id: stored.id, publicKey: new Uint8Array(Buffer.from(stored.publicKey, 'base64url')), counter: stored.counter },
        requireUserVerification: false,
      })
      if (!result.verified) return false
      newCounter = result.authenticationInfo.newCounter
    } catch {
      // A counter that did not move forward (a cloned authenticator), no user presence, another origin or rpID.
      return false
    }
    if (!(await this.recordCredentialUse(stored.counter, newCounter))) return false
    return this.consumeChallenge(scope, challenge)
  }
}

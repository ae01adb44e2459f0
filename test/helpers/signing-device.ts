import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import { MfaHandler, type ChallengeScope, type Dispatch } from '../../src/index.js'

/**
 * A host's own challenge–response method, written as README "Adding a method"
 * shows: a device that signs the server's challenges with an Ed25519 key it
 * registered at setup. No WebAuthn: only the handler API.
 */
export class SigningDeviceHandler extends MfaHandler {
  static override NAME = 'signing_device'
  static override DISPLAY_NAME = 'Signing device'
  static override setupDataSchema = Type.Object({ challenge: Type.String() }, { title: 'SigningDeviceSetupData' })
  static override challengeSchema = Type.Object({ challenge: Type.String() }, { title: 'SigningDeviceChallenge' })
  static override credentialSchema = Type.Object({
    challenge: Type.String({ maxLength: 64 }),
    signature: Type.String({ maxLength: 128 }),
  }, { title: 'SigningDeviceSignature', additionalProperties: false })
  static override setupCredentialSchema = Type.Object({
    challenge: Type.String({ maxLength: 64 }),
    signature: Type.String({ maxLength: 128 }),
    publicKey: Type.String({ maxLength: 128, description: 'The device\'s Ed25519 public key, SPKI DER, base64url.' }),
  }, { title: 'SigningDeviceRegistration', additionalProperties: false })

  // Nothing is sent, so no resend cooldown: the challenge at once.
  override async setUp (): Promise<{ challenge: string }> {
    return this.initializeMethod()
  }

  override async initializeMethod (): Promise<{ challenge: string }> {
    return { challenge: await this.issueChallenge({ kind: 'setup' }) }
  }

  override async dispatch (scope: ChallengeScope): Promise<Dispatch> {
    return { detail: 'Sign the challenge on your device.', challenge: { challenge: await this.issueChallenge(scope) } }
  }

  override async validateCredential (credential: unknown, scope: ChallengeScope): Promise<boolean> {
    const { challenge, signature, publicKey } = credential as { challenge: string, signature: string, publicKey?: string }
    if (!(await this.challengeIsLive(scope, challenge))) return false
    const key = scope.kind === 'setup' ? publicKey : (await this.storedCredential())?.publicKey
    if (key === undefined) return false
    let signed = false
    try {
      signed = verify(null, Buffer.from(challenge), createPublicKey({ key: Buffer.from(key, 'base64url'), format: 'der', type: 'spki' }), Buffer.from(signature, 'base64url'))
    } catch {
      return false // not a key, not a signature: a wrong answer
    }
    if (!signed) return false
    if (scope.kind === 'setup' && !(await this.storeCredential({ id: key, publicKey: key, counter: 0, transports: [] }))) return false
    return this.consumeChallenge(scope, challenge)
  }
}

/** The device: an Ed25519 key pair that signs what it is given. */
export function signingDevice () {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const spki = publicKey.export({ format: 'der', type: 'spki' }).toString('base64url')
  return {
    publicKey: spki,
    answer: (challenge: string) => ({ challenge, signature: sign(null, Buffer.from(challenge), privateKey).toString('base64url') }),
    register: (challenge: string) => ({ challenge, signature: sign(null, Buffer.from(challenge), privateKey).toString('base64url'), publicKey: spki }),
  }
}

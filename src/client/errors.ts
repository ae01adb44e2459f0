import type { ErrorCode } from './types.js'

/**
 * An answer that is not a success, as the server gave it: `code` is one of
 * SPEC section 4 (or Fastify's own, e.g. for a body too large); an answer
 * without Fastify's envelope (a proxy's error page) gets `HTTP_<status>`.
 */
export class AuthKitClientError extends Error {
  override readonly name = 'AuthKitClientError'
  readonly status: number
  readonly code: ErrorCode | (string & {})
  /** Seconds to wait, from `Retry-After` (429s). */
  readonly retryAfter?: number

  constructor (props: { status: number, code: string, message: string, retryAfter?: number }) {
    super(props.message)
    this.status = props.status
    this.code = props.code
    if (props.retryAfter !== undefined) this.retryAfter = props.retryAfter
  }
}

/** `Retry-After` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterSeconds (header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined
  const value = header.trim()
  if (/^\d+$/.test(value)) return Number(value)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000))
}

/** The error a failed answer stands for; reads the body. */
export async function errorOfResponse (response: Response): Promise<AuthKitClientError> {
  let envelope: { code?: unknown, message?: unknown } = {}
  try {
    const parsed: unknown = JSON.parse(await response.text())
    if (parsed !== null && typeof parsed === 'object') envelope = parsed
  } catch {}
  return new AuthKitClientError({
    status: response.status,
    code: typeof envelope.code === 'string' ? envelope.code : `HTTP_${response.status}`,
    message: typeof envelope.message === 'string' ? envelope.message : (response.statusText !== '' ? response.statusText : `HTTP ${response.status}`),
    retryAfter: retryAfterSeconds(response.headers.get('retry-after')),
  })
}

/** The `max_age` of an RFC 9470 challenge, in seconds. */
export function maxAgeOfChallenge (header: string | null): number | undefined {
  const match = header === null ? null : /(?:^|[\s,])max_age="?(\d+)"?/i.exec(header)
  return match === null ? undefined : Number(match[1])
}

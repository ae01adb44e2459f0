import { isIPv4, isIPv6 } from 'node:net'
import type { Keyring } from '../crypto.js'
import type { LoginFailureRepository } from '../repositories/login-failures.js'
import type { Repositories } from '../repositories/index.js'
import { isTransientConflict } from '../repositories/db-errors.js'
import { loginKey, type AuthKitUser } from '../users.js'
import { AuthKitErrors, retryLater } from '../errors.js'
import type { EventBus, RequestContext } from './events.js'
import type { ResolvedOptions } from '../options.js'

export type LoginThrottleSettings = ResolvedOptions['login']

/** Tries of a count that keeps meeting a window another request is restarting or purging. */
const COUNT_TRIES = 3

/**
 * Where a login comes from, for counting: an IPv4 address as it is (also when
 * mapped into IPv6), an IPv6 address by its /64, the block one host usually holds.
 */
export function clientAddress (ip: string): string {
  const address = ip.trim().toLowerCase().replace(/%.*$/, '')
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)
  if (mapped !== null && isIPv4(mapped[1])) return mapped[1]
  if (!isIPv6(address)) return address
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined]
  const groups = (part: string | undefined): string[] => (part === undefined || part === '' ? [] : part.split(':')).flatMap((g) => {
    if (!g.includes('.')) return [g]
    const [a, b, c, d] = g.split('.').map(Number) // an IPv4 tail: two groups
    return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)]
  })
  const front = groups(head)
  const back = groups(tail)
  const all = tail === undefined ? front : [...front, ...Array(8 - front.length - back.length).fill('0'), ...back]
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`
}

/**
 * Rule 13: wrong passwords per (login, client address) and per client address,
 * counted in the database so every process shares the counts. Each password
 * check is counted before the slow hash runs, so parallel guesses cannot pass
 * a limit; a right password gives its count back.
 */
export class LoginThrottleService {
  private readonly failures: LoginFailureRepository

  constructor (private readonly props: { repositories: Pick<Repositories, 'loginFailures'>, keyring: Keyring, settings: LoginThrottleSettings, events: EventBus, now: () => number }) {
    this.failures = props.repositories.loginFailures
  }

  /**
   * Counts this password check as a failure in advance, or answers 429 if the
   * client or its address is past its limit. `user` is the account the login
   * names (null when none): counts are per account, so its username and its
   * email share one; a login that names no account is counted by its
   * normalized text, the same way, so the answer tells nothing about accounts.
   */
  async reserve (ctx: RequestContext, login: string, user: AuthKitUser | null): Promise<void> {
    const now = this.props.now()
    await this.purge(now)
    const { client, address } = this.keysOf(ctx, login, user)
    let blockedUntil = await this.count(client, 'client', this.props.settings.maxFailuresPerClient, now)
    if (blockedUntil === null) {
      blockedUntil = await this.count(address, 'address', this.props.settings.maxFailuresPerAddress, now)
      if (blockedUntil !== null) await this.failures.giveBack(client)
    }
    if (blockedUntil === null) return
    this.props.events.emit('login_throttled', ctx, user === null ? null : String(user.id))
    throw retryLater(AuthKitErrors.LoginThrottled, (blockedUntil - now) / 1000)
  }

  /** A right password: the client's count starts over, and the address gets its check back. */
  async passed (ctx: RequestContext, login: string, user: AuthKitUser): Promise<void> {
    const { client, address } = this.keysOf(ctx, login, user)
    await this.failures.clear(client)
    await this.failures.giveBack(address)
  }

  /** Keyed hashes: the table shows neither addresses nor what was typed as a login. */
  private keysOf (ctx: RequestContext, login: string, user: AuthKitUser | null): { client: string, address: string } {
    const address = clientAddress(ctx.ip ?? 'unknown')
    const account = user === null ? `login\u0000${loginKey(login)}` : `user\u0000${String(user.id)}`
    return {
      client: this.props.keyring.hash(`login-client\u0000${address}\u0000${account}`),
      address: this.props.keyring.hash(`login-address\u0000${address}`),
    }
  }

  /** Counts one failure under `key`; null when counted, else when the full window ends. */
  private async count (key: string, scope: string, limit: number, now: number): Promise<number | null> {
    const expiresAt = now + this.props.settings.failureWindow * 1000
    for (let tries = 0; tries < COUNT_TRIES; tries++) {
      try {
        await this.failures.ensure(key, scope, expiresAt)
        if (await this.failures.countInWindow(key, limit, now)) return null
        if (await this.failures.restartWindow(key, now, expiresAt)) return null
        const window = await this.failures.find(key)
        if (window !== undefined && window.failures >= limit && window.expiresAt > now) return window.expiresAt
      } catch (err) {
        // MySQL may pick a statement here as the victim of a deadlock with a purge.
        if (!isTransientConflict(err)) throw err
      }
    }
    // Still contended: refuse this one check rather than let it pass uncounted.
    return now + 1000
  }

  /** Housekeeping as the table is written, so it holds live windows only and needs no job. */
  private async purge (now: number): Promise<void> {
    try {
      await this.failures.purgeExpired(now)
    } catch (err) {
      // Another process's purge or count won the rows; the next login purges again.
      if (!isTransientConflict(err)) throw err
    }
  }
}

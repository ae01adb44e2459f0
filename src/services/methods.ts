import { newId } from '../crypto.js'
import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { inUserLock, type UserTransaction } from '../db/user-lock.js'
import { MethodRepository, type MethodRow } from '../repositories/methods.js'
import { BackupCodeRepository } from '../repositories/backup-codes.js'
import { SentCodeRepository } from '../repositories/sent-codes.js'
import { ChallengeRepository } from '../repositories/challenges.js'
import { CredentialRepository } from '../repositories/credentials.js'
import { TrustedDeviceRepository } from '../repositories/devices.js'
import { SessionRepository } from '../repositories/sessions.js'
import { RefreshTokenRepository } from '../repositories/refresh-tokens.js'
import type { HandlerRegistry } from '../handlers/registry.js'
import type { ChallengeScope, Dispatch, FactorResponse, MfaHandler } from '../handlers/base.js'
import { type CodeService, matchedSpentStep } from './codes.js'
import type { CodeVerdict, LockoutService } from './lockout.js'
import type { EventBus, RequestContext } from './events.js'
import type { AuthKitUser } from '../users.js'
import { AuthKitErrors } from '../errors.js'
import type { Repositories } from '../repositories/index.js'
import type { ResolvedOptions } from '../options.js'
import type { CreatedMethod, MethodSummary } from '../../schemas/methods.js'

/** While `enabled` is false no user has an active method. */
export type MethodPolicies = Pick<ResolvedOptions['mfa'], 'enabled' | 'preventDeleteActiveMethod' | 'preventDeletePrimaryMethod' | 'deleteActiveMethodRequireCode' | 'updatePrimaryMethodRequirePrimaryCode'>

/** A code check under the lockout, and which method's backup code it spent (if any). */
export interface FactorVerdict extends CodeVerdict {
  /** Id of the method whose backup code was used up, or null. */
  backupOf: string | null
  /**
   * A refused code that was right for a TOTP step already accepted (rule 3):
   * the answer may say "already used", since whoever typed it had the code.
   */
  spentStep?: boolean
}

export interface MethodServiceProps {
  db: Kysely<Database>
  repositories: Pick<Repositories, 'methods' | 'backupCodes'>
  registry: HandlerRegistry
  codes: CodeService
  lockout: LockoutService
  events: EventBus
  policies: MethodPolicies
  now: () => number
}

/**
 * Method management (rules 1, 4, 6 and 8) for the routes under /mfa/, and
 * the one place a code of a user's factor is checked. Every change runs in
 * one transaction under the user's lock (db/user-lock.ts): the state is read
 * again inside it, policies are applied before the code is looked at, and the
 * code, its use and the change commit together or not at all (rule 10).
 */
export class MethodService {
  private readonly methods: MethodRepository

  constructor (private readonly props: MethodServiceProps) {
    this.methods = props.repositories.methods
  }

  /** The user's methods that this instance has a handler for, oldest first. */
  async methodsOf (userId: string, db: Kysely<Database> = this.props.db): Promise<MethodRow[]> {
    const rows = db === this.props.db ? await this.methods.listByUser(userId) : await new MethodRepository(db).listByUser(userId)
    return rows.filter((m) => this.props.registry.get(m.name) !== undefined)
  }

  /**
   * Active methods in handler order (the order `methods` lists them at login);
   * none while MFA is off (`mfa.enabled: false`). The one answer to whether a
   * user's second factor is on, for login, the gate and step-up alike.
   */
  async activeMethods (userId: string, db: Kysely<Database> = this.props.db): Promise<MethodRow[]> {
    if (!this.props.policies.enabled) return []
    return this.activeOf(await this.methodsOf(userId, db))
  }

  /** `activeMethods` of rows already read (a user transaction's `methods`), in handler order. */
  activeOf (rows: MethodRow[]): MethodRow[] {
    if (!this.props.policies.enabled) return []
    const order = this.props.registry.list()
    return rows.filter((m) => m.isActive && this.props.registry.get(m.name) !== undefined)
      .sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))
  }

  /**
   * Active methods whose handler is no longer configured are ignored, so a
   * user whose only method that was now logs in with the password alone:
   * said loudly at startup, since only the host can decide what to do.
   */
  async orphanedMethods (): Promise<Array<{ name: string, users: number }>> {
    const counts = await this.methods.activeUsersByName()
    return [...counts].filter(([name]) => this.props.registry.get(name) === undefined).map(([name, users]) => ({ name, users }))
  }

  /**
   * A handler instance for one user's method, over `db` (a transaction inside
   * one). It carries the row's sealed secret, read with the row, so a TOTP
   * check does not read the row again.
   */
  handlerFor (user: AuthKitUser, row: MethodRow, db: Kysely<Database> = this.props.db): MfaHandler {
    return this.props.registry.instantiate(this.props.codes.on(db), user, row, row.secret)
  }

  async list (user: AuthKitUser): Promise<MethodSummary[]> {
    const userId = String(user.id)
    const rows = await this.methods.listWithBackupCodeCounts(userId)
    return this.props.registry.classes().map((cls) => {
      const row = rows.find((r) => r.name === cls.NAME)
      return {
        name: cls.NAME,
        display_name: this.props.registry.displayName(cls.NAME),
        is_active: row?.isActive ?? false,
        is_primary: row?.isPrimary ?? false,
        is_setup: row !== undefined,
        requires_dispatch: this.props.registry.requiresDispatch(cls.NAME),
        backup_codes_remaining: row?.backupCodes ?? 0,
      }
    })
  }

  /**
   * Inside the user's transaction: `response` as proof of `row` (its own code
   * or credential, checked by its handler for `scope`, default the method
   * routes; then, unless `ownOnly`, a typed backup code of one of
   * `backupMethods`, default `row` alone), under the lockout. 429 while locked.
   */
  async checkFactor (tx: UserTransaction, user: AuthKitUser, row: MethodRow, response: FactorResponse, options: { ownOnly?: boolean, backupMethods?: MethodRow[], scope?: ChallengeScope } = {}): Promise<FactorVerdict> {
    const userId = String(user.id)
    let backupOf: string | null = null
    let spentStep = false
    const verdict = await this.props.lockout.check(tx, userId, async () => {
      const handler = this.handlerFor(user, row, tx.trx)
      if (await handler.validateResponse(response, options.scope ?? { kind: 'method' })) return true
      spentStep = matchedSpentStep(handler)
      if (options.ownOnly === true || !('code' in response)) return false
      const ids = (options.backupMethods ?? [row]).map((m) => m.id)
      backupOf = await this.props.codes.on(tx.trx).consumeBackupCode(userId, ids, response.code)
      return backupOf !== null
    })
    return { ...verdict, backupOf, spentStep: !verdict.right && spentStep }
  }

  /** After the transaction: the events a code check owes, and 403 for a wrong code. */
  private settle (ctx: RequestContext, userId: string, name: string, verdict: FactorVerdict, backupMethods: MethodRow[] = []): void {
    if (verdict.lockedNow) this.props.events.emit('user_locked', ctx, userId, name)
    if (!verdict.right) throw verdict.spentStep === true ? new AuthKitErrors.CodeAlreadyUsed() : new AuthKitErrors.InvalidCode()
    if (verdict.backupOf !== null) {
      this.props.events.emit('backup_code_used', ctx, userId, backupMethods.find((m) => m.id === verdict.backupOf)?.name ?? name)
    }
  }

  /**
   * Setup runs before anything is stored: a method whose setup mail could not
   * be sent is never created (rule 8).
   */
  async create (ctx: RequestContext, user: AuthKitUser, name: string): Promise<CreatedMethod> {
    const userId = String(user.id)
    if (await this.methods.find(userId, name) !== undefined) throw new AuthKitErrors.MethodExists()
    const cls = this.props.registry.require(name)
    const row: MethodRow = {
      id: newId(), userId, name, secret: null, isActive: false, isPrimary: false, lastTotpStep: null, createdAt: this.props.now(),
    }
    const handler = this.handlerFor(user, row)
    row.secret = await handler.newSecret()
    const setupData = await handler.setUp()
    // A handler whose setup data misses its own schema is a host bug: fail before storing anything.
    // TypeBox's value checker (about 0.6 MB of heap) loads with the first method set up, not at start-up.
    const { Value } = await import('@sinclair/typebox/value')
    if (!Value.Check(cls.setupDataSchema, setupData)) throw new Error(`fastify-auth-kit: ${cls.name}.initializeMethod() returned data that does not match its setupDataSchema`)
    const { shown, stored } = await this.props.codes.newBackupCodes(userId)
    await inUserLock(this.props.db, userId, async ({ trx }) => {
      const methods = new MethodRepository(trx)
      if (await methods.find(userId, name) !== undefined) throw new AuthKitErrors.MethodExists()
      await methods.insert(row)
      await new BackupCodeRepository(trx).replaceForMethod(row.id, userId, stored, row.createdAt)
    })
    this.props.events.emit('method_created', ctx, userId, name)
    return { method: name, backup_codes: shown, setup_data: setupData }
  }

  /**
   * Activates a created method with its own code. When it is the user's first
   * active method, every other session of theirs that has no second factor
   * (`amr` without `mfa`) ends: a password-only login made before MFA was
   * turned on does not outlive it. `sessionId`: the caller's session, kept.
   */
  async confirm (ctx: RequestContext, user: AuthKitUser, name: string, response: FactorResponse, sessionId?: string): Promise<void> {
    const userId = String(user.id)
    const verdict = await inUserLock(this.props.db, userId, async (tx) => {
      const methods = new MethodRepository(tx.trx)
      const row = await methods.find(userId, name)
      if (row === undefined) throw new AuthKitErrors.MethodNotFound()
      if (row.isActive) throw new AuthKitErrors.MethodAlreadyActive()
      const verdict = await this.checkFactor(tx, user, row, response, { ownOnly: true, scope: { kind: 'setup' } })
      if (!verdict.right) return verdict
      const first = (await this.activeMethods(userId, tx.trx)).length === 0
      await methods.activate(row.id, false)
      await this.settlePrimary(tx.trx, userId)
      if (first) {
        const now = this.props.now()
        const ended = await new SessionRepository(tx.trx).revokeWithoutMfa(userId, now, sessionId ?? '')
        await new RefreshTokenRepository(tx.trx).revokeFamilies(ended, now)
      }
      return verdict
    })
    this.settle(ctx, userId, name, verdict)
    this.props.events.emit('method_confirmed', ctx, userId, name)
  }

  async setPrimary (ctx: RequestContext, user: AuthKitUser, name: string, primaryCode: FactorResponse | undefined): Promise<void> {
    const userId = String(user.id)
    let current: MethodRow | undefined
    const verdict = await inUserLock(this.props.db, userId, async (tx) => {
      const rows = await this.methodsOf(userId, tx.trx)
      const target = rows.find((r) => r.name === name && r.isActive)
      if (target === undefined) throw new AuthKitErrors.MethodNotFound()
      current = rows.find((r) => r.isPrimary && r.isActive) ?? target
      const verdict: FactorVerdict = this.props.policies.updatePrimaryMethodRequirePrimaryCode
        ? await this.checkFactor(tx, user, current, primaryCode ?? { code: '' })
        : { right: true, lockedNow: false, backupOf: null }
      if (verdict.right) await this.settlePrimary(tx.trx, userId, target.id)
      return verdict
    })
    this.settle(ctx, userId, current?.name ?? name, verdict, current === undefined ? [] : [current])
    this.props.events.emit('primary_changed', ctx, userId, name)
  }

  async deactivate (ctx: RequestContext, user: AuthKitUser, name: string, code: FactorResponse): Promise<void> {
    const userId = String(user.id)
    const verdict = await inUserLock(this.props.db, userId, async (tx) => {
      const methods = new MethodRepository(tx.trx)
      const row = await methods.find(userId, name)
      if (row === undefined || !row.isActive) throw new AuthKitErrors.MethodNotFound()
      if (row.isPrimary) throw new AuthKitErrors.PrimaryMethodProtected('deactivated')
      const verdict = await this.checkFactor(tx, user, row, code)
      if (!verdict.right) return verdict
      await methods.deactivate(row.id)
      await this.settlePrimary(tx.trx, userId)
      await new TrustedDeviceRepository(tx.trx).revokeAllOf(userId)
      return verdict
    })
    this.settle(ctx, userId, name, verdict)
    this.props.events.emit('method_deactivated', ctx, userId, name)
  }

  async delete (ctx: RequestContext, user: AuthKitUser, name: string, code: FactorResponse | undefined): Promise<void> {
    const userId = String(user.id)
    const { policies } = this.props
    const verdict = await inUserLock(this.props.db, userId, async (tx) => {
      const row = await new MethodRepository(tx.trx).find(userId, name)
      if (row === undefined) throw new AuthKitErrors.MethodNotFound()
      if (policies.preventDeleteActiveMethod && row.isActive) throw new AuthKitErrors.ActiveMethodProtected()
      if (policies.preventDeletePrimaryMethod && row.isPrimary) throw new AuthKitErrors.PrimaryMethodProtected('deleted')
      const verdict: FactorVerdict = row.isActive && policies.deleteActiveMethodRequireCode
        ? await this.checkFactor(tx, user, row, code ?? { code: '' })
        : { right: true, lockedNow: false, backupOf: null }
      if (!verdict.right) return verdict
      await this.removeMethod(tx.trx, userId, row)
      if (row.isActive) await new TrustedDeviceRepository(tx.trx).revokeAllOf(userId)
      return verdict
    })
    this.settle(ctx, userId, name, verdict)
    this.props.events.emit('method_deleted', ctx, userId, name)
  }

  /**
   * Deletes a method with its backup codes, last sent code, challenges and
   * credential, and settles the primary. Inside the user's transaction.
   */
  async removeMethod (trx: Kysely<Database>, userId: string, row: MethodRow): Promise<void> {
    await new BackupCodeRepository(trx).deleteForMethod(row.id)
    await new MethodRepository(trx).delete(row.id)
    await new SentCodeRepository(trx).invalidate(userId, row.name)
    await new ChallengeRepository(trx).deleteForMethod(row.id)
    await new CredentialRepository(trx).deleteForMethod(row.id)
    await this.settlePrimary(trx, userId)
  }

  /** SVG of the QR code of a method created and not yet active; 404 `AUTH_KIT_METHOD_NOT_FOUND` otherwise. */
  async qrCode (user: AuthKitUser, name: string): Promise<string> {
    const row = await this.methods.find(String(user.id), name)
    if (row === undefined || row.isActive) throw new AuthKitErrors.MethodNotFound()
    const svg = await this.handlerFor(user, row).qrCodeSvg()
    if (svg === null) throw new AuthKitErrors.MethodNotFound()
    return svg
  }

  /**
   * `POST /mfa/send/`: the method's dispatch for the method routes (a code
   * sent, or a challenge to answer), active or not. 400 for a method that
   * dispatches nothing, before the user's methods are looked at.
   */
  async send (_ctx: RequestContext, user: AuthKitUser, name: string): Promise<Dispatch> {
    if (!this.props.registry.requiresDispatch(name)) throw new AuthKitErrors.MethodNotDispatchable()
    const row = await this.methods.find(String(user.id), name)
    if (row === undefined) throw new AuthKitErrors.MethodNotFound()
    return this.handlerFor(user, row).dispatch({ kind: 'method' }, { strict: true })
  }

  /**
   * New backup codes for an active method: the code that allows it, the old
   * set and the new one change in one transaction, so of parallel
   * regenerations exactly one wins and a crash leaves the old set whole.
   */
  async regenerateBackupCodes (ctx: RequestContext, user: AuthKitUser, name: string, code: FactorResponse): Promise<string[]> {
    const userId = String(user.id)
    // Hashed before the lock is taken: the slow part holds nobody up.
    const { shown, stored } = await this.props.codes.newBackupCodes(userId)
    const verdict = await inUserLock(this.props.db, userId, async (tx) => {
      const row = await new MethodRepository(tx.trx).find(userId, name)
      if (row === undefined || !row.isActive) throw new AuthKitErrors.MethodNotFound()
      const verdict = await this.checkFactor(tx, user, row, code)
      if (!verdict.right) return verdict
      await new BackupCodeRepository(tx.trx).replaceForMethod(row.id, userId, stored, this.props.now())
      await new TrustedDeviceRepository(tx.trx).revokeAllOf(userId)
      return verdict
    })
    this.settle(ctx, userId, name, verdict)
    this.props.events.emit('backup_codes_regenerated', ctx, userId, name)
    return shown
  }

  /**
   * Rule 1, kept in one place: while a user has an active method exactly one
   * active method is primary. `preferredId` wins if active; otherwise the
   * current primary stays; otherwise the active method created first. Runs
   * inside the user's transaction.
   */
  async settlePrimary (trx: Kysely<Database>, userId: string, preferredId?: string): Promise<void> {
    const repo = new MethodRepository(trx)
    const rows = await repo.listByUser(userId)
    const active = rows.filter((r) => r.isActive)
    const chosen = active.find((r) => r.id === preferredId) ?? active.find((r) => r.isPrimary) ?? active[0]
    const primaries = rows.filter((r) => r.isPrimary)
    if (chosen === undefined) {
      if (primaries.length > 0) await repo.setPrimary(userId, '')
      return
    }
    if (primaries.length === 1 && primaries[0].id === chosen.id) return
    await repo.setPrimary(userId, chosen.id)
  }
}

import { randomUUID } from 'node:crypto'
import { Value } from '@sinclair/typebox/value'
import type { Kysely } from 'kysely'
import type { Database } from '../db/types.js'
import { MethodRepository, type MethodRow } from '../repositories/methods.js'
import { BackupCodeRepository } from '../repositories/backup-codes.js'
import type { HandlerRegistry } from '../handlers/registry.js'
import type { MfaHandler } from '../handlers/base.js'
import type { CodeService, SpentBackupCode } from './codes.js'
import type { LockoutService } from './lockout.js'
import type { EventBus, RequestContext } from './events.js'
import type { AuthKitUser } from '../users.js'
import { AuthKitErrors } from '../errors.js'

export interface MethodPolicies {
  preventDeleteActiveMethod: boolean
  preventDeletePrimaryMethod: boolean
  deleteActiveMethodRequireCode: boolean
  updatePrimaryMethodRequirePrimaryCode: boolean
}

interface CodeReceipt {
  /** The change failed after the code was accepted: give a spent backup code back. */
  undo (): Promise<void>
  /** The change happened. */
  done (): void
}

export interface MethodSummary {
  name: string
  display_name: string
  is_active: boolean
  is_primary: boolean
  is_setup: boolean
  requires_dispatch: boolean
  backup_codes_remaining: number
}

/** Method management (rules 1, 4 and 6) for the routes under /mfa/. */
export class MethodService {
  private readonly methods: MethodRepository
  private readonly backupCodes: BackupCodeRepository

  constructor (
    private readonly db: Kysely<Database>,
    private readonly registry: HandlerRegistry,
    private readonly codes: CodeService,
    private readonly lockout: LockoutService,
    private readonly events: EventBus,
    private readonly policies: MethodPolicies,
    private readonly now: () => number,
  ) {
    this.methods = new MethodRepository(db)
    this.backupCodes = new BackupCodeRepository(db)
  }

  /** The user's methods that this instance has a handler for. */
  async methodsOf (userId: string): Promise<MethodRow[]> {
    return (await this.methods.listByUser(userId)).filter((m) => this.registry.get(m.name) !== undefined)
  }

  /** Active methods in handler order (the order `methods` lists them at login). */
  async activeMethods (userId: string): Promise<MethodRow[]> {
    const rows = (await this.methodsOf(userId)).filter((m) => m.isActive)
    const order = this.registry.list()
    return rows.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))
  }

  /**
   * Active methods whose handler is no longer configured are ignored, so a
   * user whose only method that was now logs in with the password alone:
   * said loudly at startup, since only the host can decide what to do.
   */
  async orphanedMethods (): Promise<Array<{ name: string, users: number }>> {
    const counts = await this.methods.activeUsersByName()
    return [...counts].filter(([name]) => this.registry.get(name) === undefined).map(([name, users]) => ({ name, users }))
  }

  handlerFor (user: AuthKitUser, row: MethodRow): MfaHandler {
    return this.registry.instantiate(this.codes, user, row)
  }

  async list (user: AuthKitUser): Promise<MethodSummary[]> {
    const userId = String(user.id)
    const rows = await this.methodsOf(userId)
    const counts = await this.backupCodes.countByMethod(userId)
    return this.registry.classes().map((cls) => {
      const row = rows.find((r) => r.name === cls.NAME)
      return {
        name: cls.NAME,
        display_name: this.registry.displayName(cls.NAME),
        is_active: row?.isActive ?? false,
        is_primary: row?.isPrimary ?? false,
        is_setup: row !== undefined,
        requires_dispatch: cls.REQUIRES_DISPATCH,
        backup_codes_remaining: row === undefined ? 0 : counts.get(row.id) ?? 0,
      }
    })
  }

  /**
   * Setup runs before anything is stored: a method whose setup mail could not
   * be sent is never created (rule 8).
   */
  async create (ctx: RequestContext, user: AuthKitUser, name: string): Promise<{ method: string, backup_codes: string[], setup_data: unknown }> {
    const userId = String(user.id)
    if (await this.methods.find(userId, name) !== undefined) throw new AuthKitErrors.MethodExists()
    const cls = this.registry.require(name)
    const row: MethodRow = {
      id: randomUUID(), userId, name, secret: cls.REQUIRES_DISPATCH ? null : this.codes.newTotpSecret(userId, name),
      isActive: false, isPrimary: false, lastTotpStep: null, createdAt: this.now(),
    }
    const handler = this.registry.instantiate(this.codes, user, row, row.secret)
    let setupData: unknown
    if (cls.REQUIRES_DISPATCH) {
      // Within the cooldown nothing new is sent; the code sent last still works.
      const sent = await this.codes.dispatch(handler, false, async () => { setupData = await handler.initializeMethod() })
      if (!sent) setupData = { detail: cls.SETUP_RESPONSE_MESSAGE }
    } else {
      setupData = await handler.initializeMethod()
    }
    // A handler whose setup data misses its own schema is a host bug: fail before storing anything.
    if (!Value.Check(cls.setupDataSchema, setupData)) throw new Error(`fastify-auth-kit: ${cls.name}.initializeMethod() returned data that does not match its setupDataSchema`)
    const { shown, stored } = await this.codes.newBackupCodes(userId)
    try {
      await this.db.transaction().execute(async (trx) => {
        await new MethodRepository(trx).insert(row)
        await new BackupCodeRepository(trx).replaceForMethod(row.id, userId, stored, row.createdAt)
      })
    } catch (err) {
      if (await this.methods.find(userId, name) !== undefined) throw new AuthKitErrors.MethodExists()
      throw err
    }
    this.events.emit('method_created', ctx, userId, name)
    return { method: name, backup_codes: shown, setup_data: setupData }
  }

  async confirm (ctx: RequestContext, user: AuthKitUser, name: string, code: string): Promise<void> {
    const userId = String(user.id)
    const row = await this.methods.find(userId, name)
    if (row === undefined) throw new AuthKitErrors.MethodNotFound()
    if (row.isActive) throw new AuthKitErrors.MethodAlreadyActive()
    const handler = this.handlerFor(user, row)
    const right = await this.lockout.check(ctx, userId, name, async () => handler.validateOtpCode(code))
    if (!right) throw new AuthKitErrors.InvalidCode()
    if (!(await this.methods.activate(row.id, false))) throw new AuthKitErrors.MethodAlreadyActive()
    await this.settlePrimary(userId)
    this.events.emit('method_confirmed', ctx, userId, name)
  }

  async setPrimary (ctx: RequestContext, user: AuthKitUser, name: string, primaryCode: string | undefined): Promise<void> {
    const userId = String(user.id)
    const rows = await this.methodsOf(userId)
    const target = rows.find((r) => r.name === name && r.isActive)
    if (target === undefined) throw new AuthKitErrors.MethodNotFound()
    if (this.policies.updatePrimaryMethodRequirePrimaryCode) {
      const current = rows.find((r) => r.isPrimary && r.isActive) ?? target
      const receipt = await this.requireCode(ctx, user, current, primaryCode ?? '')
      receipt.done()
    }
    await this.settlePrimary(userId, target.id)
    this.events.emit('primary_changed', ctx, userId, name)
  }

  async deactivate (ctx: RequestContext, user: AuthKitUser, name: string, code: string): Promise<void> {
    const userId = String(user.id)
    const row = await this.methods.find(userId, name)
    if (row === undefined || !row.isActive) throw new AuthKitErrors.MethodNotFound()
    if (row.isPrimary) throw new AuthKitErrors.PrimaryMethodProtected('deactivated')
    const receipt = await this.requireCode(ctx, user, row, code)
    if (!(await this.methods.deactivate(row.id))) {
      await receipt.undo()
      throw new AuthKitErrors.MethodNotFound()
    }
    receipt.done()
    await this.settlePrimary(userId)
    this.events.emit('method_deactivated', ctx, userId, name)
  }

  async delete (ctx: RequestContext, user: AuthKitUser, name: string, code: string | undefined): Promise<void> {
    const userId = String(user.id)
    const row = await this.methods.find(userId, name)
    if (row === undefined) throw new AuthKitErrors.MethodNotFound()
    if (this.policies.preventDeleteActiveMethod && row.isActive) throw new AuthKitErrors.ActiveMethodProtected()
    if (this.policies.preventDeletePrimaryMethod && row.isPrimary) throw new AuthKitErrors.PrimaryMethodProtected('deleted')
    const receipt = row.isActive && this.policies.deleteActiveMethodRequireCode ? await this.requireCode(ctx, user, row, code ?? '') : undefined
    const deleted = await this.db.transaction().execute(async (trx) => {
      await new BackupCodeRepository(trx).deleteForMethod(row.id)
      return new MethodRepository(trx).delete(row.id)
    })
    if (!deleted) {
      // A racing request deleted it first; the backup code spent here has nothing to come back to.
      throw new AuthKitErrors.MethodNotFound()
    }
    receipt?.done()
    await this.codes.forgetSentCodes(userId, name)
    await this.settlePrimary(userId)
    this.events.emit('method_deleted', ctx, userId, name)
  }

  async send (ctx: RequestContext, user: AuthKitUser, name: string): Promise<void> {
    const cls = this.registry.require(name)
    if (!cls.REQUIRES_DISPATCH) throw new AuthKitErrors.MethodNotDispatchable()
    const row = await this.methods.find(String(user.id), name)
    if (row === undefined) throw new AuthKitErrors.MethodNotFound()
    await this.codes.dispatch(this.handlerFor(user, row), true)
  }

  async regenerateBackupCodes (ctx: RequestContext, user: AuthKitUser, name: string, code: string): Promise<string[]> {
    const userId = String(user.id)
    const row = await this.methods.find(userId, name)
    if (row === undefined || !row.isActive) throw new AuthKitErrors.MethodNotFound()
    const receipt = await this.requireCode(ctx, user, row, code)
    const { shown, stored } = await this.codes.newBackupCodes(userId)
    await this.db.transaction().execute(async (trx) => {
      await new BackupCodeRepository(trx).replaceForMethod(row.id, userId, stored, this.now())
    })
    receipt.done()
    this.events.emit('backup_codes_regenerated', ctx, userId, name)
    return shown
  }

  /**
   * A code of `row`'s method (own, then backup), under the lockout; 403 if
   * wrong. The receipt gives a spent backup code back if the change it
   * allowed then fails (two racing requests: only one changes anything).
   */
  private async requireCode (ctx: RequestContext, user: AuthKitUser, row: MethodRow, code: string): Promise<CodeReceipt> {
    const userId = String(user.id)
    const handler = this.handlerFor(user, row)
    let spent: SpentBackupCode | null = null
    const right = await this.lockout.check(ctx, userId, row.name, async () => {
      if (await handler.validateOtpCode(code)) return true
      spent = await this.codes.consumeBackupCode(userId, [row.id], code)
      return spent !== null
    })
    if (!right) throw new AuthKitErrors.InvalidCode()
    const backup = spent as SpentBackupCode | null
    return {
      undo: async () => { await backup?.restore() },
      done: () => { if (backup !== null) this.events.emit('backup_code_used', ctx, userId, row.name) },
    }
  }

  /**
   * Rule 1, kept in one place: while a user has an active method exactly one
   * active method is primary. `preferred` wins if active; otherwise the
   * current primary stays; otherwise the active method created first.
   */
  async settlePrimary (userId: string, preferredId?: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
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
    })
  }
}

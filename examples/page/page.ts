/**
 * The demo's page (SPEC section 11, "The page"): every route of the plugin,
 * through the typed client, with plain DOM calls. The HTML holds the
 * structure; this module fills it in and answers clicks. Errors show the
 * server's own message and code beside what was pressed; a `Retry-After`
 * becomes a countdown.
 */
import {
  AuthKitClientError, createAuthKitClient, finishPasskey, startPasskey,
  type CreateMethodAnswer, type LoginAnswer, type MethodInfo, type PasskeyChallenge, type StepUpProof, type Tokens, type UserAnswer,
} from '../../src/client/index.js'
import type { PageConfig } from './serve.js'

const config = JSON.parse(document.getElementById('config')!.textContent!) as PageConfig
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T

// Tokens last as long as the tab (a reload keeps you logged in); device tokens as long as the browser.
const TOKENS = 'auth-kit-demo:tokens'
const deviceKey = (login: string) => `auth-kit-demo:device:${login.trim().toLowerCase()}`
const client = createAuthKitClient({
  baseUrl: new URL(config.prefix, location.origin).href,
  storage: {
    get: () => JSON.parse(sessionStorage.getItem(TOKENS) ?? 'null') as Tokens | null,
    set: (tokens) => { if (tokens === null) sessionStorage.removeItem(TOKENS); else sessionStorage.setItem(TOKENS, JSON.stringify(tokens)) },
  },
  onStepUp: askStepUp,
})

const methodConfig = (name: string) => config.methods.find((m) => m.name === name) ?? { name, display_name: name, requires_dispatch: false }
const displayName = (name: string) => methodConfig(name).display_name
const when = (iso: string) => new Date(iso).toLocaleString()

/** An element with attributes and children; text goes in as text, never as HTML. */
function h<K extends keyof HTMLElementTagNameMap> (tag: K, attributes: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value)
  element.append(...children)
  return element
}

function button (label: string, onClick: () => Promise<void>, accessibleName = label): HTMLButtonElement {
  const element = h('button', { type: 'button', 'aria-label': accessibleName }, label)
  element.addEventListener('click', () => { void run(element, onClick) })
  return element
}

function say (message: string): void { $('status').textContent = message }

// ---- errors, with Retry-After as a countdown ----

const countdowns = new WeakMap<Element, number>()

/** The error box of the form or card around `element` (else the page's own). */
const errorBoxOf = (element: Element) => element.closest('form, .card, dialog')?.querySelector<HTMLElement>('.error') ?? $('page-error')

function showError (box: HTMLElement, error: unknown, trigger: HTMLButtonElement | null): void {
  if (error instanceof AuthKitClientError && error.status === 401 && client.storage.get() === null && !$('signed-in').hidden) {
    showSignedOut(`Your session has ended: log in again. (${error.code})`)
    return
  }
  const message = error instanceof AuthKitClientError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error)
  box.textContent = message
  const seconds = error instanceof AuthKitClientError ? error.retryAfter : undefined
  if (seconds === undefined) return
  // The alert is read once; the ticking number is left out of the live region.
  const counter = h('span', { 'aria-live': 'off' })
  box.append(' ', counter)
  const until = Date.now() + seconds * 1000
  if (trigger !== null) trigger.disabled = true
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000)
    if (left > 0) {
      counter.textContent = `Try again in ${left} s.`
      countdowns.set(box, window.setTimeout(tick, 1000))
    } else {
      counter.textContent = 'You can try again now.'
      countdowns.delete(box)
      if (trigger !== null) trigger.disabled = false
    }
  }
  tick()
}

function clearError (box: HTMLElement): void {
  window.clearTimeout(countdowns.get(box))
  countdowns.delete(box)
  box.textContent = ''
}

/** Runs what a button or form does: the button is off meanwhile, an error shows in its card. */
async function run (trigger: HTMLButtonElement | HTMLElement | null, action: () => Promise<void>, box = errorBoxOf(trigger!)): Promise<void> {
  const pressed = trigger instanceof HTMLButtonElement ? trigger : null
  clearError(box)
  if (pressed !== null) pressed.disabled = true
  try {
    await action()
  } catch (error) {
    showError(box, error, pressed)
  } finally {
    if (pressed !== null && !countdowns.has(box)) pressed.disabled = false
  }
}

function onSubmit (formId: string, action: (form: HTMLFormElement) => Promise<void>): void {
  const form = $<HTMLFormElement>(formId)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void run(event.submitter ?? form, () => action(form), form.querySelector<HTMLElement>('.error')!)
  })
}

const field = (form: HTMLFormElement, name: string) => (form.elements.namedItem(name) as HTMLInputElement)

// ---- views ----

function show (view: 'signed-out' | 'second-step' | 'signed-in'): void {
  for (const id of ['signed-out', 'second-step', 'signed-in']) $(id).hidden = id !== view
  $(view).querySelector<HTMLElement>('h2')!.focus()
}

function showSignedOut (message = ''): void {
  say(message)
  $('setup').hidden = true
  $('backup').hidden = true
  show('signed-out')
}

async function showSignedIn ({ user }: UserAnswer, setupRequired = false): Promise<void> {
  $('who').textContent = String(user.username ?? user.id)
  $('setup-required').hidden = !setupRequired
  show('signed-in')
  await refresh()
}

/** Reloads the lists; a setup-only login (SPEC section 9) sees only its methods. */
async function refresh (): Promise<void> {
  await Promise.all([
    run(null, renderMethods, errorBoxOf($('methods'))),
    ...($('setup-required').hidden ? [run(null, renderSessions, errorBoxOf($('sessions'))), run(null, renderDevices, errorBoxOf($('devices')))] : []),
  ])
}

// ---- register, log in, the second step ----

onSubmit('register-form', async (form) => {
  const username = field(form, 'username').value
  await client.register({ username, email: field(form, 'email').value, password: field(form, 'password').value })
  form.reset()
  $<HTMLInputElement>('login-username').value = username
  say(`Account ${username} created: log in.`)
  $('login-password').focus()
})

/** The login attempt of the second step. */
let attempt: { token: string, method: string, methods: string[], login: string, challenge?: PasskeyChallenge | undefined } | null = null
let backupMode = false

onSubmit('login-form', async (form) => {
  const login = field(form, 'username').value
  const device = localStorage.getItem(deviceKey(login))
  const answer: LoginAnswer = await client.login({ username: login, password: field(form, 'password').value, ...(device === null ? {} : { device_token: device }) })
  form.reset()
  say('')
  if (!answer.mfa_enabled) return showSignedIn(answer, 'mfa_setup_required' in answer)
  // A passkey attempt (SPEC section 10) carries the challenge its passkey answers.
  attempt = { token: answer.ephemeral_token, method: answer.method, methods: answer.methods, login, challenge: answer.challenge }
  backupMode = false
  renderSecondStep()
  show('second-step')
})

function renderSecondStep (): void {
  const { method, methods, challenge } = attempt!
  const { display_name, requires_dispatch } = methodConfig(method)
  const sends = requires_dispatch && method !== 'passkey'
  $('verify-hint').textContent = backupMode
    ? `Enter one of the backup codes you saved when you set up a method.`
    : sends ? `A code was sent for ${display_name}: enter the latest one.` : `Enter the code of ${display_name}.`
  $('verify-label').textContent = backupMode ? 'Backup code' : `Code of ${display_name}`
  $('use-backup').setAttribute('aria-pressed', String(backupMode))
  $('resend').hidden = !sends || backupMode
  $('passkey-login').hidden = challenge === undefined
  $('other-methods').replaceChildren(...methods.filter((name) => name !== method).map((name) =>
    button(`Use ${displayName(name)} instead`, async () => {
      const changed = await client.changeMethod({ ephemeral_token: attempt!.token, new_method: name })
      attempt = { ...attempt!, token: changed.ephemeral_token, method: changed.method, challenge: changed.challenge }
      backupMode = false
      renderSecondStep()
      $('verify-code').focus()
    })))
}

onSubmit('verify-form', async (form) => {
  const remember = field(form, 'remember').checked
  const answer = await client.verify({ ephemeral_token: attempt!.token, code: field(form, 'code').value, remember_device: remember })
  keepDevice(answer.device_token, answer.user)
  form.reset()
  attempt = null
  await showSignedIn(answer)
})

/** A remembered device's token, kept under every name one may log in with. */
function keepDevice (device: string | undefined, user: UserAnswer['user'] = { id: '' }): void {
  if (device === undefined) return
  for (const login of [attempt!.login, user.username, user.email]) if (typeof login === 'string') localStorage.setItem(deviceKey(login), device)
}

$('resend').addEventListener('click', () => void run($('resend'), async () => {
  const { detail } = await client.resend({ ephemeral_token: attempt!.token })
  $('verify-hint').textContent = detail
}))

$('use-backup').addEventListener('click', () => {
  backupMode = !backupMode
  renderSecondStep()
  $('verify-code').focus()
})

$('passkey-login').addEventListener('click', () => void run($('passkey-login'), async () => {
  const credential = finishPasskey(await startPasskey(attempt!.challenge!))
  const remember = field($<HTMLFormElement>('verify-form'), 'remember').checked
  const answer = await client.verify({ ephemeral_token: attempt!.token, credential, remember_device: remember })
  keepDevice(answer.device_token)
  $<HTMLFormElement>('verify-form').reset()
  attempt = null
  await showSignedIn(answer)
}))

$('cancel-login').addEventListener('click', () => { attempt = null; showSignedOut() })

$('logout').addEventListener('click', () => void run($('logout'), async () => {
  try { await client.logout() } finally { showSignedOut('Logged out.') }
}))

// ---- methods ----

let methods: MethodInfo[] = []

async function renderMethods (): Promise<void> {
  methods = await client.listMethods()
  $('methods').replaceChildren(...methods.map((method) => {
    const name = method.display_name
    const state = method.is_active ? (method.is_primary ? 'Active, primary' : 'Active') : method.is_setup ? 'Not active' : 'Not set up'
    const actions: HTMLButtonElement[] = []
    if (!method.is_setup) actions.push(button('Set up', () => setUp(method), `Set up ${name}`))
    if (method.is_setup && !method.is_active) actions.push(button('Confirm', () => continueSetup(method), `Confirm ${name}`))
    if (method.is_active && !method.is_primary) actions.push(button('Make primary', () => makePrimary(method), `Make ${name} primary`))
    if (method.is_active && !method.is_primary) actions.push(button('Deactivate', () => deactivate(method), `Deactivate ${name}`))
    if (method.is_active) actions.push(button('New backup codes', () => newBackupCodes(method), `New backup codes for ${name}`))
    if (method.is_setup) actions.push(button('Delete', () => remove(method), `Delete ${name}`))
    return h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, state), h('td', {}, method.is_active ? String(method.backup_codes_remaining) : '–'), h('td', {}, h('div', { class: 'actions' }, ...actions)))
  }))
  $('passkey').hidden = !methods.some((m) => m.name === 'passkey')
}

/** The method whose setup the setup card shows. */
let settingUp: MethodInfo | null = null

async function setUp (method: MethodInfo): Promise<void> {
  const created = await client.createMethod({ method: method.name })
  showSetup(method, created.setup_data)
  showBackupCodes(method, created.backup_codes)
  await renderMethods()
}

/** A method created earlier and not confirmed: the app's QR again (GET /mfa/qr/), or a new code. */
async function continueSetup (method: MethodInfo): Promise<void> {
  if (!method.requires_dispatch) {
    const svg = await client.qrCode(method.name)
    return showSetup(method, { qr_code: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}` })
  }
  if (method.name !== 'passkey') return showSetup(method, { detail: 'Enter the latest code sent, or send a new one.' })
  // A passkey not confirmed: the options of POST /mfa/ may have expired, so send asks for fresh ones.
  const { challenge } = await client.send({ method: method.name })
  if (challenge !== undefined && 'user' in challenge) showSetup(method, { options: challenge })
}

function showSetup (method: MethodInfo, data: CreateMethodAnswer['setup_data']): void {
  settingUp = method
  $('setup-title').textContent = `Set up ${method.display_name}`
  $('setup-app').hidden = data.qr_code === undefined
  if (data.qr_code !== undefined) $<HTMLImageElement>('setup-qr').src = data.qr_code
  $('setup-key-row').hidden = data.qr_link === undefined
  if (data.qr_link !== undefined) {
    $('setup-key').textContent = (new URL(data.qr_link).searchParams.get('secret') ?? '').replace(/(.{4})(?=.)/g, '$1 ')
    $<HTMLAnchorElement>('setup-link').href = data.qr_link
  }
  $('setup-detail').textContent = data.options !== undefined ? 'Press "Create the passkey" in the Passkey card below: the browser asks this device for a new passkey.' : data.detail ?? ''
  $('confirm-label').textContent = `Code of ${method.display_name}`
  $('setup-send').hidden = !method.requires_dispatch
  $('confirm-form').hidden = data.options !== undefined
  // Hook for passkeys (SPEC section 10): their setup answers creation options instead of sending a code.
  pendingPasskey = data.options ?? null
  $<HTMLButtonElement>('passkey-create').disabled = pendingPasskey === null
  $('setup').hidden = false
  $('setup-title').focus()
}

onSubmit('confirm-form', async (form) => {
  const { detail } = await client.confirmMethod({ method: settingUp!.name, code: field(form, 'code').value })
  form.reset()
  $('setup').hidden = true
  say(detail)
  $('setup-required').hidden = true // a setup-only login now has a full session
  await refresh()
})

$('setup-send').addEventListener('click', () => void run($('setup-send'), async () => {
  $('setup-detail').textContent = (await client.send({ method: settingUp!.name })).detail
}))

let pendingPasskey: CreateMethodAnswer['setup_data']['options'] | null = null
$('passkey-create').addEventListener('click', () => void run($('passkey-create'), async () => {
  const credential = finishPasskey(await startPasskey(pendingPasskey!))
  const { detail } = await client.confirmMethod({ method: 'passkey', credential })
  $('setup').hidden = true
  pendingPasskey = null
  say(detail)
  $('setup-required').hidden = true // a setup-only login now has a full session
  await refresh()
}).then(() => { $<HTMLButtonElement>('passkey-create').disabled = pendingPasskey === null })) // run() enables the button it pressed

const primaryMethod = () => methods.find((m) => m.is_primary)

async function makePrimary (method: MethodInfo): Promise<void> {
  const primary = primaryMethod()!
  const answer = await ask({ title: `Make ${method.display_name} primary`, text: `Enter a code of your current primary method, ${primary.display_name}, or one of its backup codes.`, sendFor: primary })
  if (answer === null) return
  say((await client.setPrimary('credential' in answer ? { method: method.name, credential: answer.credential } : { method: method.name, primary_code: answer.code })).detail)
  await renderMethods()
}

async function deactivate (method: MethodInfo): Promise<void> {
  const answer = await ask({ title: `Deactivate ${method.display_name}`, text: `Enter a code of ${method.display_name} or one of its backup codes.`, sendFor: method })
  if (answer === null) return
  say((await client.deactivate({ method: method.name, ...proofOf(answer) })).detail)
  await refresh() // deactivating forgets the remembered devices
}

async function remove (method: MethodInfo): Promise<void> {
  // An active method needs its code (deleteActiveMethodRequireCode); an inactive one does not.
  const answer = method.is_active
    ? await ask({ title: `Delete ${method.display_name}`, text: `Enter a code of ${method.display_name} or one of its backup codes.`, sendFor: method })
    : await ask({ title: `Delete ${method.display_name}`, text: `${method.display_name} is not active. Delete it?`, code: false })
  if (answer === null) return
  await client.deleteMethod(method.is_active ? { method: method.name, ...proofOf(answer) } : { method: method.name })
  if (settingUp?.name === method.name) $('setup').hidden = true
  say(`${method.display_name} deleted.`)
  await refresh()
}

async function newBackupCodes (method: MethodInfo): Promise<void> {
  const answer = await ask({ title: `New backup codes for ${method.display_name}`, text: `The old ones stop working. Enter a code of ${method.display_name} or one of its backup codes.`, sendFor: method })
  if (answer === null) return
  showBackupCodes(method, (await client.regenerateBackupCodes({ method: method.name, ...proofOf(answer) })).backup_codes)
  await refresh()
}

/** A dialog's answer as a method route's body takes it: a code, or a passkey's `credential`. */
const proofOf = (answer: StepUpProof) => ('credential' in answer ? { credential: answer.credential } : { code: answer.code })

// ---- backup codes: copy, download ----

let backupText = ''

function showBackupCodes (method: MethodInfo, codes: string[]): void {
  backupText = `Backup codes of ${method.display_name} for ${$('who').textContent} (Auth Kit demo). Each works once.\n\n${codes.join('\n')}\n`
  $('backup-method').textContent = method.display_name
  $('backup-codes').replaceChildren(...codes.map((code) => h('li', {}, h('code', {}, code))))
  const link = $<HTMLAnchorElement>('download-codes')
  if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href)
  link.href = URL.createObjectURL(new Blob([backupText], { type: 'text/plain' }))
  link.download = `backup-codes-${method.name}.txt`
  $('backup-status').textContent = ''
  $('backup').hidden = false
}

$('copy-codes').addEventListener('click', () => void run($('copy-codes'), async () => {
  await navigator.clipboard.writeText(backupText)
  $('backup-status').textContent = 'Copied to the clipboard.'
}))

$('hide-codes').addEventListener('click', () => {
  $('backup').hidden = true
  $('backup-codes').replaceChildren()
  URL.revokeObjectURL($<HTMLAnchorElement>('download-codes').href)
  backupText = ''
})

// ---- sessions, devices, the protected action ----

async function renderSessions (): Promise<void> {
  const sessions = await client.sessions()
  $('sessions').replaceChildren(...sessions.map((session) => {
    const text = `${session.current ? 'This session' : 'Session'} · since ${when(session.created_at)} · last used ${when(session.last_used_at)} · ${session.amr.includes('mfa') ? 'with a second factor' : 'password only'}`
    return h('li', {}, h('span', {}, text), session.current ? '' : button('Revoke', async () => {
      await client.revokeSession({ id: session.id })
      await renderSessions()
    }, `Revoke the session since ${when(session.created_at)}`))
  }))
}

$('revoke-others').addEventListener('click', () => void run($('revoke-others'), async () => {
  await client.revokeOtherSessions()
  say('Every other session is logged out, and remembered devices are forgotten.')
  await refresh()
}))

async function renderDevices (): Promise<void> {
  const devices = await client.devices()
  $('devices').replaceChildren(...(devices.length === 0
    ? [h('li', {}, 'None. Tick "Remember this device" at the second step to skip it next time.')]
    : devices.map((device) => h('li', {}, h('span', {}, `${device.label}${device.current ? ' (this browser)' : ''} · since ${when(device.created_at)} · until ${when(device.expires_at)}`),
      button('Forget', async () => {
        await client.revokeDevice({ id: device.id })
        await renderDevices()
      }, `Forget ${device.label} since ${when(device.created_at)}`)))))
}

$('demo-action').addEventListener('click', () => void run($('demo-action'), async () => {
  $('demo-result').textContent = ''
  const response = await client.fetch(config.demoAction, { method: 'POST' })
  const body = await response.json() as { code?: string, message?: string }
  if (!response.ok) throw new AuthKitClientError({ status: response.status, code: body.code ?? `HTTP_${response.status}`, message: body.message ?? response.statusText })
  $('demo-result').textContent = `Done at ${new Date().toLocaleTimeString()}: the server answered ${JSON.stringify(body)}.`
}))

// ---- the code dialog: method routes and step-up ----

interface Question { title: string, text: string, code?: boolean, sendFor?: MethodInfo, choose?: MethodInfo[] }

/**
 * Asks for a code in a modal dialog; null when cancelled. With `choose`, the
 * person picks the method too. For a passkey, "Use your passkey" asks the
 * server for a challenge (POST /mfa/send/) and the browser for its answer,
 * which is the dialog's answer (SPEC section 10); a backup code still works.
 */
function ask ({ title, text, code = true, sendFor, choose }: Question): Promise<StepUpProof | null> {
  const dialog = $<HTMLDialogElement>('ask')
  const select = $<HTMLSelectElement>('ask-method')
  const input = $<HTMLInputElement>('ask-code')
  $('ask-title').textContent = title
  $('ask-text').textContent = text
  $('ask-status').textContent = ''
  clearError(errorBoxOf(input))
  $('ask-code-row').hidden = !code
  input.required = code
  input.value = ''
  $('ask-method-row').hidden = choose === undefined
  select.replaceChildren(...(choose ?? []).map((m) => h('option', { value: m.name, ...(m.is_primary ? { selected: '' } : {}) }, m.display_name)))
  const chosen = () => (choose === undefined ? sendFor : choose.find((m) => m.name === select.value))
  const isPasskey = () => code && chosen()?.name === 'passkey'
  const updateButtons = () => {
    $('ask-send').hidden = !(chosen()?.requires_dispatch ?? false) || isPasskey()
    $('ask-passkey').hidden = !isPasskey()
    $('ask-code-label').textContent = isPasskey() ? 'Backup code' : 'Code or backup code'
  }
  updateButtons()

  const listening = new AbortController()
  const { signal } = listening
  let answer: StepUpProof | null = null
  const method = () => (choose === undefined ? {} : { method: select.value })
  select.addEventListener('change', updateButtons, { signal })
  $('ask-form').addEventListener('submit', (event) => {
    event.preventDefault()
    answer = { code: input.value, ...method() }
    dialog.close()
  }, { signal })
  $('ask-cancel').addEventListener('click', () => dialog.close(), { signal })
  $('ask-send').addEventListener('click', () => void run($('ask-send'), async () => {
    $('ask-status').textContent = (await client.send({ method: chosen()!.name })).detail
    input.focus()
  }), { signal })
  $('ask-passkey').addEventListener('click', () => void run($('ask-passkey'), async () => {
    const { challenge } = await client.send({ method: chosen()!.name })
    if (challenge === undefined || 'user' in challenge) throw new Error('The server sent no passkey challenge.')
    answer = { credential: finishPasskey(await startPasskey(challenge)), ...method() }
    dialog.close()
  }), { signal })
  dialog.showModal()
  return new Promise((resolve) => dialog.addEventListener('close', () => { listening.abort(); resolve(answer) }, { signal }))
}

/** The client's step-up callback: a route wants a (fresh) second factor. */
async function askStepUp ({ maxAge }: { maxAge?: number }): Promise<StepUpProof | null> {
  const active = (await client.listMethods()).filter((m) => m.is_active)
  if (active.length === 0) return null
  const recent = maxAge === undefined ? '' : ` in the last ${maxAge >= 60 ? `${Math.round(maxAge / 60)} minutes` : `${maxAge} seconds`}`
  const passkey = active.some((m) => m.name === 'passkey') ? ', or use your passkey' : ''
  return ask({ title: 'Confirm it is you', text: `This needs a second factor checked${recent}. Enter a code of one of your methods or a backup code${passkey}.`, choose: active })
}

// ---- start ----

if (client.storage.get() === null) showSignedOut()
else void client.user().then((user) => showSignedIn(user), () => showSignedOut())

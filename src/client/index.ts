/**
 * `fastify-auth-kit/client`: a typed client of the plugin's routes for
 * browsers and Node (SPEC section 11). It needs the global `fetch` and
 * nothing else at run time.
 */
import { AuthKitClientError, errorOfResponse, maxAgeOfChallenge } from './errors.js'
import type {
  BackupCodesAnswer, BackupCodesBody, ChangeMethodAnswer, ChangeMethodBody, ConfirmMethodAnswer, ConfirmMethodBody, CreateMethodAnswer,
  CreateMethodBody, DeactivateBody, DeleteMethodBody, DetailAnswer, DeviceInfo, LoginAnswer, LoginBody, LogoutBody, MethodInfo, PasskeyCredential,
  RefreshAnswer, RefreshBody, RegisterAnswer, RegisterBody, ResendAnswer, ResendBody, RevokeDeviceBody, RevokeSessionBody, SendAnswer, SendBody,
  SessionInfo, SetPrimaryBody, StepUpAnswer, StepUpBody, Tokens, UserAnswer, VerifyAnswer, VerifyBody,
} from './types.js'

export { AuthKitClientError }
export type * from './types.js'
export { finishPasskey, startPasskey } from './passkey.js'
export type {
  AuthenticationResponseJSON, Base64URLString, CredentialsLike, PasskeyAssertion, PasskeyInit, PasskeyRegistration,
  PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialDescriptorJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON,
} from './passkey.js'

/** Where the client keeps its tokens (e.g. around `localStorage`); default: in memory. */
export interface TokenStorage {
  get (): Tokens | null
  set (tokens: Tokens | null): void
}

/** What a step-up callback is told: the route's `max_age` (seconds), when it named one. */
export interface StepUpInfo { maxAge?: number }

/**
 * What a step-up callback answers: a code (or backup code) of `method`
 * (default: the primary), or for a passkey the `credential` answering the
 * `challenge` of `send({ method })`.
 */
export type StepUpProof = { code: string, method?: string } | { credential: PasskeyCredential, method?: string }

export interface AuthKitClientOptions {
  /** The plugin's prefix as a full URL, e.g. `https://example.com/api/auth`. */
  baseUrl: string
  /** Default: the global `fetch`, looked up at each request. */
  fetch?: typeof fetch
  /** Default: in memory, lost with the client. */
  storage?: TokenStorage
  /**
   * Called on a 401 `AUTH_KIT_STEP_UP_REQUIRED`: ask the user for a code of
   * `method` (default: the primary) or a backup code, or a passkey's
   * `credential`, or answer null to give up (the 401 is then thrown). The
   * client posts it to `/login/step-up/`, keeps the new access token and sends
   * the request again, once.
   */
  onStepUp?: (info: StepUpInfo) => Promise<StepUpProof | null>
}

/** A storage that lives as long as the client. */
export function memoryStorage (): TokenStorage {
  let tokens: Tokens | null = null
  return { get: () => tokens, set: (next) => { tokens = next } }
}

interface Exchange {
  method: string
  /** Relative to `baseUrl` (e.g. `/login/`), or a full URL of the host's own. */
  path: string
  /** Read again for each attempt: a refresh in between may change it (logout sends the current refresh token). */
  body?: () => unknown
  /** Send the stored access token, refresh once on an expired one, step up once when asked. */
  auth: boolean
  init?: RequestInit
}

/** Creates a client of the routes under `baseUrl`; see {@link AuthKitClientOptions}. */
export function createAuthKitClient (options: AuthKitClientOptions) {
  if (typeof options?.baseUrl !== 'string' || options.baseUrl === '') throw new TypeError('fastify-auth-kit client: baseUrl is required (the plugin\'s prefix as a full URL)')
  const base = options.baseUrl.replace(/\/+$/, '')
  const storage = options.storage ?? memoryStorage()
  const fetchFn: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  let refreshing: Promise<boolean> | null = null

  const urlOf = (path: string): string => (/^[a-z][a-z0-9+.-]*:/i.test(path) ? path : base + path)

  async function attempt (request: Exchange, tokens: Tokens | null): Promise<Response> {
    const headers = new Headers(request.init?.headers)
    if (request.auth && tokens !== null) headers.set('authorization', `Bearer ${tokens.access}`)
    const init: RequestInit = { ...request.init, method: request.method, headers }
    if (request.body !== undefined) {
      headers.set('content-type', 'application/json')
      init.body = JSON.stringify(request.body())
    }
    return fetchFn(urlOf(request.path), init)
  }

  /** The error code of a 401, read from a copy so the answer stays readable. */
  async function codeOf (response: Response): Promise<string | undefined> {
    try {
      const body: unknown = await response.clone().json()
      return body !== null && typeof body === 'object' && typeof (body as { code?: unknown }).code === 'string' ? (body as { code: string }).code : undefined
    } catch {
      return undefined
    }
  }

  /**
   * One refresh at a time: calls that meet an expired token together share it,
   * so the refresh token is presented once (a second presentation would be
   * refused as a reuse, SPEC section 3). False when it was refused; the stored
   * tokens are then dropped, as the session is over.
   */
  function refreshOnce (stale: Tokens): Promise<boolean> {
    const current = storage.get()
    if (current === null) return Promise.resolve(false) // logged out meanwhile
    if (current.access !== stale.access) return Promise.resolve(true) // another call refreshed already
    if (refreshing !== null) return refreshing
    const refresh = stale.refresh
    if (refresh === undefined) return Promise.resolve(false)
    refreshing = (async () => {
      const response = await attempt({ method: 'POST', path: '/token/refresh/', body: () => ({ refresh }), auth: false }, null)
      if (!response.ok) {
        if (response.status === 401 && storage.get()?.refresh === refresh) storage.set(null)
        return false
      }
      storage.set(await response.json() as RefreshAnswer)
      return true
    })().finally(() => { refreshing = null })
    return refreshing
  }

  /** Asks the host's callback for a code and raises the session; false when the callback gave up. */
  async function stepUpFor (challenge: Response): Promise<boolean> {
    const answer = await options.onStepUp!({ maxAge: maxAgeOfChallenge(challenge.headers.get('www-authenticate')) })
    if (answer === null || answer === undefined) return false
    const method = answer.method === undefined ? {} : { method: answer.method }
    await stepUp('credential' in answer ? { credential: answer.credential, ...method } : { code: answer.code, ...method }, false)
    return true
  }

  /**
   * Sends a request; with `auth`, at most one refresh and one step-up round
   * trip, each followed by one more attempt. The last answer is returned
   * whatever its status.
   */
  async function exchange (request: Exchange, allowStepUp = true): Promise<Response> {
    let refreshed = false
    let steppedUp = false
    for (;;) {
      const tokens = request.auth ? storage.get() : null
      const response = await attempt(request, tokens)
      if (!request.auth || response.status !== 401) return response
      const code = await codeOf(response)
      let again = false
      if (code === 'AUTH_KIT_UNAUTHORIZED' && !refreshed && tokens?.refresh !== undefined) {
        refreshed = true
        again = await refreshOnce(tokens)
      } else if (code === 'AUTH_KIT_STEP_UP_REQUIRED' && !steppedUp && allowStepUp && options.onStepUp !== undefined) {
        steppedUp = true
        again = await stepUpFor(response)
      }
      if (!again) return response
      await response.body?.cancel() // the answer is replaced: free its connection
    }
  }

  async function call<T> (request: Exchange, answer: 'json' | 'text' | 'none', allowStepUp = true): Promise<T> {
    const response = await exchange(request, allowStepUp)
    if (!response.ok) throw await errorOfResponse(response)
    if (answer === 'none') return undefined as T
    return (answer === 'text' ? await response.text() : await response.json()) as T
  }

  const post = <T>(path: string, body: unknown, auth: boolean): Promise<T> => call<T>({ method: 'POST', path, body: () => body, auth }, 'json')
  const get = <T>(path: string): Promise<T> => call<T>({ method: 'GET', path, auth: true }, 'json')
  const postNothing = (path: string, body: unknown): Promise<void> => call<void>({ method: 'POST', path, body: body === undefined ? undefined : () => body, auth: true }, 'none')

  /** Keeps the tokens of an answer that has them. */
  function keep<T extends object> (answer: T): T {
    const { access, refresh, access_expiration, refresh_expiration } = answer as Partial<Record<keyof Tokens, unknown>>
    if (typeof access !== 'string') return answer
    const tokens: Tokens = { access }
    if (typeof refresh === 'string') tokens.refresh = refresh
    if (typeof access_expiration === 'string') tokens.access_expiration = access_expiration
    if (typeof refresh_expiration === 'string') tokens.refresh_expiration = refresh_expiration
    storage.set(tokens)
    return answer
  }

  async function stepUp (body: StepUpBody, allowStepUp = true): Promise<StepUpAnswer> {
    const answer = await call<StepUpAnswer>({ method: 'POST', path: '/login/step-up/', body: () => body, auth: true }, 'json', allowStepUp)
    // Same session: the refresh token stays; later refreshes keep the raised amr.
    storage.set({ ...storage.get(), access: answer.access, access_expiration: answer.access_expiration })
    return answer
  }

  return {
    /** `POST /registration/` (only with `registration: true`). Keeps no tokens: log in next. */
    register: (body: RegisterBody) => call<RegisterAnswer>({ method: 'POST', path: '/registration/', body: () => body, auth: false }, 'json'),
    /** `POST /login/`: keeps the tokens of a one-step or setup-only login; `mfa_enabled: true` means {@link verify} follows. */
    login: async (body: LoginBody): Promise<LoginAnswer> => keep(await post<LoginAnswer>('/login/', body, false)),
    /** `POST /login/verify/`: keeps the tokens. `device_token` (with `remember_device`) is the caller's to keep and send to {@link login}. */
    verify: async (body: VerifyBody): Promise<VerifyAnswer> => keep(await post<VerifyAnswer>('/login/verify/', body, false)),
    /** `POST /login/step-up/`: keeps the fresh access token (same session). */
    stepUp: (body: StepUpBody) => stepUp(body),
    /** `POST /login/change-method/`. */
    changeMethod: (body: ChangeMethodBody) => post<ChangeMethodAnswer>('/login/change-method/', body, false),
    /** `POST /login/resend/`. */
    resend: (body: ResendBody) => post<ResendAnswer>('/login/resend/', body, false),
    /** `POST /token/refresh/` with the stored refresh token (or the one given); keeps the new tokens. */
    refresh: async (body?: RefreshBody): Promise<RefreshAnswer> => {
      const refresh = body?.refresh ?? storage.get()?.refresh
      if (refresh === undefined) throw new AuthKitClientError({ status: 401, code: 'AUTH_KIT_INVALID_REFRESH_TOKEN', message: 'No refresh token is stored.' })
      return keep(await post<RefreshAnswer>('/token/refresh/', { refresh }, false))
    },
    /**
     * `POST /logout/` with the stored refresh token (or the one given), then
     * forgets the tokens, whatever the server said. A setup-only login has no
     * refresh token: its tokens are forgotten and nothing is sent.
     */
    logout: async (body?: LogoutBody): Promise<void> => {
      try {
        if (body === undefined && storage.get()?.refresh === undefined) return
        await call<void>({ method: 'POST', path: '/logout/', body: () => body ?? { refresh: storage.get()?.refresh }, auth: true }, 'none')
      } finally {
        storage.set(null)
      }
    },
    /** `GET /user/`. */
    user: () => get<UserAnswer>('/user/'),
    /** `GET /sessions/`: live sessions, newest first. */
    sessions: () => get<SessionInfo[]>('/sessions/'),
    /** `POST /sessions/revoke/`. */
    revokeSession: (body: RevokeSessionBody) => postNothing('/sessions/revoke/', body),
    /** `POST /sessions/revoke-others/`. */
    revokeOtherSessions: () => postNothing('/sessions/revoke-others/', undefined),
    /** `GET /devices/`: remembered devices. */
    devices: () => get<DeviceInfo[]>('/devices/'),
    /** `POST /devices/revoke/`. */
    revokeDevice: (body: RevokeDeviceBody) => postNothing('/devices/revoke/', body),
    /** `GET /mfa/`: every configured method and its state. */
    listMethods: () => get<MethodInfo[]>('/mfa/'),
    /** `POST /mfa/`: the backup codes are shown only here. */
    createMethod: (body: CreateMethodBody) => post<CreateMethodAnswer>('/mfa/', body, true),
    /** `POST /mfa/confirm/`: after a setup-only login the answer is a full session, which is kept. */
    confirmMethod: async (body: ConfirmMethodBody): Promise<ConfirmMethodAnswer> => keep(await post<ConfirmMethodAnswer>('/mfa/confirm/', body, true)),
    /** `GET /mfa/qr/?method=NAME`: the QR code as SVG markup. */
    qrCode: (method: string) => call<string>({ method: 'GET', path: `/mfa/qr/?method=${encodeURIComponent(method)}`, auth: true }, 'text'),
    /** `POST /mfa/primary/`. */
    setPrimary: (body: SetPrimaryBody) => post<DetailAnswer>('/mfa/primary/', body, true),
    /** `POST /mfa/deactivate/`. */
    deactivate: (body: DeactivateBody) => post<DetailAnswer>('/mfa/deactivate/', body, true),
    /** `POST /mfa/delete/`. */
    deleteMethod: (body: DeleteMethodBody) => postNothing('/mfa/delete/', body),
    /** `POST /mfa/send/`: a code is sent, or for a passkey the answer has a `challenge` for `startPasskey()`. */
    send: (body: SendBody) => post<SendAnswer>('/mfa/send/', body, true),
    /** `POST /mfa/backup-codes/`: the method's earlier backup codes stop working. */
    regenerateBackupCodes: (body: BackupCodesBody) => post<BackupCodesAnswer>('/mfa/backup-codes/', body, true),
    /**
     * A request of the host's own (a relative URL is resolved against
     * `baseUrl` as `new URL()` does: `/orders` is on its origin) with
     * the stored access token, the same refresh and step-up round trips, and
     * the last answer returned as it is. A body must be one that can be sent
     * twice (a string, not a stream).
     */
    fetch: (url: string | URL, init: RequestInit = {}): Promise<Response> => {
      const method = (init.method ?? 'GET').toUpperCase()
      return exchange({ method, path: new URL(url, `${base}/`).href, auth: true, init })
    },
    /** The token storage, for reading whether a user is logged in. */
    storage,
  }
}

export type AuthKitClient = ReturnType<typeof createAuthKitClient>

import type { ResolvedOptions } from './options.js'

/**
 * What the plugin's own OpenAPI document and Swagger UI add to the route
 * schemas (SPEC section 11): the walkthrough, the tags and the order of a real
 * session, and what the Authorize dialog says.
 */

/** Tags in the order a person meets them. */
export const DOCUMENT_TAGS = [
  { name: 'login', description: 'Registration, the two-step login, tokens, step-up and the account.' },
  { name: 'methods', description: 'The logged-in user\'s MFA methods: set one up, see its QR code, confirm it, manage it.' },
  { name: 'sessions and devices', description: 'Where the user is logged in, and the devices that skip the second step.' },
]

/**
 * Operations in the order of a real session; Swagger UI lists them in the
 * document's order, which otherwise is the order the routes were registered in.
 */
export const SESSION_ORDER = [
  'register', 'login', 'loginVerify', 'loginChangeMethod', 'loginResend', 'getUser', 'refreshToken', 'loginStepUp', 'logout',
  'listMethods', 'createMethod', 'getMethodQr', 'confirmMethod', 'sendMethodCode', 'setPrimaryMethod', 'regenerateBackupCodes',
  'deactivateMethod', 'deleteMethod',
  'listSessions', 'revokeSession', 'revokeOtherSessions', 'listDevices', 'revokeDevice',
]

/** What the Authorize dialog shows beside the bearer scheme. */
export const BEARER_DESCRIPTION = 'Paste the `access` token of POST /login/ (a one-step login), POST /login/verify/ or POST /login/step-up/: '
  + 'the token alone, without "Bearer ". Not the `ephemeral_token`, not the `refresh` token. It stays here when the page is reloaded; '
  + 'when it expires (401 AUTH_KIT_UNAUTHORIZED), log in again or get a new one from POST /token/refresh/ and paste that.'

/** Puts the paths in the order of `SESSION_ORDER`; unknown operations keep their place after the known ones. */
export function orderPathsBySession<D extends { paths?: object }> (document: D): D {
  if (document.paths === undefined) return document
  const rank = (item: unknown): number => {
    const ranks = Object.values(item ?? {}).map((op) => SESSION_ORDER.indexOf(String((op as { operationId?: unknown } | null)?.operationId))).filter((i) => i >= 0)
    return ranks.length === 0 ? SESSION_ORDER.length : Math.min(...ranks)
  }
  const entries = Object.entries(document.paths).map((entry, index) => ({ entry, index, rank: rank(entry[1]) }))
  entries.sort((a, b) => a.rank - b.rank || a.index - b.index)
  return { ...document, paths: Object.fromEntries(entries.map(({ entry }) => entry)) }
}

/** The document's landing text: a first session, step by step, with the paths this instance serves. */
export function documentDescription (options: Pick<ResolvedOptions, 'prefix' | 'registration' | 'mfa' | 'tokens'>, methods: string[]): string {
  const p = options.prefix.replace(/\/$/, '')
  const minutes = Math.max(1, Math.round(options.tokens.accessTokenExpiry / 60))
  const intro = 'Multi-factor authentication for Fastify: a two-step login with an authenticator app, codes by email, backup codes and more. '
    + 'Every request below can be sent from this page: open a route, press **Try it out**, then **Execute**. The examples work as they are.'
  const account = options.registration
    ? `1. **Register.** \`POST ${p}/registration/\`: the example makes the user \`alice\`.`
    : '1. **Have an account.** Registration is off on this server: use an account of the application.'
  const oneStep = [
    account,
    `2. **Log in.** \`POST ${p}/login/\` with the same username and password. Without a method, login is one step: the answer has \`mfa_enabled: false\` and an \`access\` token.`,
    `3. **Authorize.** Press **Authorize** (top right), paste the \`access\` token (without "Bearer "), press **Authorize**, then **Close**. `
      + `The routes with a padlock now send it; it survives a reload of this page. It lives ${minutes} minute${minutes === 1 ? '' : 's'}: `
      + 'after that, log in again and paste the new one.',
  ]
  if (!options.mfa.enabled) return [intro, '', '## A first session', '', ...oneStep].join('\n')
  const hasApp = methods.includes('app')
  const setUp = hasApp
    ? [
        `4. **Set up the authenticator app.** \`POST ${p}/mfa/\` with \`{"method": "app"}\`. Keep the \`backup_codes\`: they are shown only here, and each one logs you in once if the phone is lost.`,
        `5. **See the QR code.** \`GET ${p}/mfa/qr/\` with \`method\` = \`app\`: the answer is the QR code, an SVG image, and this page shows it as a picture under **Response body**. Scan it with an authenticator app (Google Authenticator, Microsoft Authenticator, 1Password, …). `
          + '(The `qr_link` of the previous answer holds the same secret, for apps that take a link or a typed key.)',
        `6. **Confirm.** \`POST ${p}/mfa/confirm/\` with \`{"method": "app", "code": "<the 6 digits the app shows>"}\`. The method is now active and primary.`,
      ]
    : [
        `4. **Set up a method.** \`POST ${p}/mfa/\` with one of ${methods.map((m) => `\`${m}\``).join(', ')}. Keep the \`backup_codes\`: they are shown only here.`,
        `5. **Get the code.** A method that sends codes sends one now (see below where it goes).`,
        `6. **Confirm.** \`POST ${p}/mfa/confirm/\` with the method and its code. The method is now active and primary.`,
      ]
  const twoSteps = [
    `7. **Log in with two steps.** \`POST ${p}/login/\` again: now the answer has \`mfa_enabled: true\` and an \`ephemeral_token\`. `
      + `Send it with a code to \`POST ${p}/login/verify/\`. Each app code works once: if the one you confirmed with is still on the screen, wait for the next. `
      + 'Paste the new `access` token into **Authorize**: it carries the second factor, which the method routes want from now on.',
  ]
  const notes = [
    '## Good to know',
    '',
    `- **Codes by email.** ${methods.includes('email') ? `The \`email\` method mails a code at setup, at login and on \`POST ${p}/mfa/send/\`.` : 'Methods that send codes send one at setup and at login.'} `
      + 'On the demo server (`npm start`), mails are not sent: they appear on the development outbox page, `/dev/outbox`.',
    '- **Backup codes.** At `POST /login/verify/`, a backup code works in place of the app\'s code, once.',
    '- **Errors.** Every error has `statusCode`, `code` (to branch on), `error` and `message`; each route lists its codes under its responses.',
    '- **Step-up.** A route that wants a recent second factor answers 401 `AUTH_KIT_STEP_UP_REQUIRED`: '
      + `\`POST ${p}/login/step-up/\` with a code gives a fresh \`access\` token of the same session.`,
  ]
  return [intro, '', '## A first session', '', ...oneStep, ...setUp, ...twoSteps, '', ...notes].join('\n')
}

/**
 * A Swagger UI plugin, served as a script file beside the UI (so the page's
 * Content-Security-Policy keeps `script-src 'self'`, no inline script): it
 * shows an `image/svg+xml` answer, the QR code of `GET /mfa/qr/`, as a
 * picture, and its documented example as the SVG text it is. Swagger UI 5 on
 * its own shows such an answer as XML text, and its example as "XML example
 * cannot be generated" (it builds XML examples from the schema, ignoring a
 * string example, and a string schema has no element name).
 *
 * @fastify/swagger-ui builds its configuration inside `window.onload` and can
 * serialise no plugin of ours into it, while a `theme.js` file runs before
 * `onload`: so the script wraps `SwaggerUIBundle`, adding the plugin to
 * whatever configuration the page passes. The picture is a `data:` URL of the
 * answer (the CSP's `img-src` allows `data:`); being an `<img>`, any script in
 * an SVG would not run.
 */
const SVG_ANSWER_SCRIPT = `// fastify-auth-kit: Swagger UI shows an image/svg+xml answer as a picture.
(function () {
  'use strict'
  var bundle = window.SwaggerUIBundle
  if (typeof bundle !== 'function') return
  function SvgAnswerAsPicture (system) {
    var React = system.React
    var xmlSample = system.fn && system.fn.getXmlSampleSchema
    return {
      fn: typeof xmlSample !== 'function' ? {} : {
        // A string example of an XML media type (image/svg+xml) is the document
        // itself; Swagger UI would instead build one from the schema, and for a
        // plain string schema shows "XML example cannot be generated".
        getXmlSampleSchema: function (schema, config, example) {
          if (typeof example === 'string' && example !== '') return example
          return xmlSample.apply(this, arguments)
        }
      },
      wrapComponents: {
        responseBody: function (Original) {
          return function ResponseBodyWithPicture (props) {
            var type = String(props.contentType || '')
            if (!/^image\\/svg\\+xml\\b/i.test(type) || typeof props.content !== 'string' || props.content === '') {
              return React.createElement(Original, props)
            }
            return React.createElement('div', null,
              React.createElement('h5', null, 'Response body'),
              React.createElement('img', {
                className: 'auth-kit-svg-answer',
                alt: 'The answer, an SVG image',
                src: 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(props.content)
              }))
          }
        }
      }
    }
  }
  function SwaggerUIBundleWithPictures (config) {
    var plugins = (config && config.plugins) || []
    return bundle(Object.assign({}, config, { plugins: plugins.concat([SvgAnswerAsPicture]) }))
  }
  Object.assign(SwaggerUIBundleWithPictures, bundle)
  window.SwaggerUIBundle = SwaggerUIBundleWithPictures
})()
`

/** The size of the picture: a QR code's SVG has a viewBox and no size of its own. */
const SVG_ANSWER_STYLE = `.swagger-ui img.auth-kit-svg-answer { display: block; width: 240px; height: 240px; background: #fff; }
`

/** @fastify/swagger-ui's `theme` option: the files above, served under `<routePrefix>/static/theme/`. */
export const SWAGGER_UI_THEME = {
  title: 'fastify-auth-kit API',
  js: [{ filename: 'auth-kit-svg-answers.js', content: SVG_ANSWER_SCRIPT }],
  css: [{ filename: 'auth-kit-svg-answers.css', content: SVG_ANSWER_STYLE }],
}

/**
 * Serves the demo's page: `index.html` at `/`, `page.css`, and `page.ts`
 * bundled by esbuild (with the typed client it imports) once, when the app is
 * built. The page's scripts come only from this origin: its
 * Content-Security-Policy allows no inline script.
 */
import type { FastifyInstance } from 'fastify'
import { build } from 'esbuild'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))

/** What the page needs to know of the server before anyone logs in; read from a JSON data block. */
export interface PageConfig {
  /** The plugin's prefix. */
  prefix: string
  /** The host's route behind `requireMfa`. */
  demoAction: string
  /** The configured methods, in order: the second step shows their names and whether they send codes. */
  methods: Array<{ name: string, display_name: string, requires_dispatch: boolean }>
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
}

export async function servePage (app: FastifyInstance, options: Omit<PageConfig, 'methods'>): Promise<void> {
  const bundled = await build({ entryPoints: [here('./page.ts')], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent' })
  const script = bundled.outputFiles[0].text
  const style = await readFile(here('./page.css'), 'utf8')
  const handlers = app.authKit.handlers
  const config: PageConfig = {
    ...options,
    methods: handlers.list().map((name) => ({ name, display_name: handlers.get(name)!.DISPLAY_NAME, requires_dispatch: handlers.get(name)!.REQUIRES_DISPATCH })),
  }
  // A JSON data block is never run, so the policy's script-src does not apply to it; `<` is escaped so it cannot close the element.
  const html = (await readFile(here('./index.html'), 'utf8')).replace('{{config}}', () => JSON.stringify(config).replace(/</g, '\\u003c'))

  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(html))
  app.get('/page.js', { schema: { hide: true } }, async (_request, reply) => reply.headers(SECURITY_HEADERS).type('text/javascript; charset=utf-8').send(script))
  app.get('/page.css', { schema: { hide: true } }, async (_request, reply) => reply.headers(SECURITY_HEADERS).type('text/css; charset=utf-8').send(style))
}

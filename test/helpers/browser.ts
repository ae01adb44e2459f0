import type { Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { existsSync, mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, BrowserContextOptions, Locator, Page } from 'playwright-core'

// What the browser tests share: Debian's chromium, how it is launched, what a
// page did that a test checks at the end, and where screenshots go.

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
/** The repository's root folder, an absolute path. */
export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)))

// A journey in a browser on a loaded machine is slow: more than .taprc's 120 s a file.
const JOURNEY_TIMEOUT = 5 * 60 * 1000

/**
 * Subtest `title` of `t`, run by `body` with five minutes to finish, where
 * `CHROMIUM` exists; elsewhere `t` plans nothing and says how to get the
 * browser to run `what` (a phrase: "the page's browser test").
 */
export function testInChromium (t: Test, title: string, what: string, body: (t: Test) => Promise<void>): void {
  if (!existsSync(CHROMIUM)) {
    t.plan(0, `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium, as .ci/run does) to run ${what}`)
    return
  }
  t.test(title, async (t) => {
    t.setTimeout(JOURNEY_TIMEOUT)
    await body(t)
  })
}

/** Console errors, failed requests and error answers (`METHOD /path status`) a page met. */
export interface PageLog { consoleErrors: string[], failedRequests: string[], errorAnswers: string[] }

/** Records what `page` meets into `log`, from now on. */
export function watch (page: Page, log: PageLog): void {
  page.on('console', (message) => { if (message.type() === 'error') log.consoleErrors.push(message.text()) })
  page.on('pageerror', (error) => log.consoleErrors.push(`uncaught: ${error.message}`))
  page.on('requestfailed', (request) => log.failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`))
  page.on('response', (response) => {
    if (response.status() >= 400) log.errorAnswers.push(`${response.request().method()} ${new URL(response.url()).pathname} ${response.status()}`)
  })
}

/**
 * The error answers `app` sends from now on, each as `METHOD url status code`
 * with the body's `code`: the server's own record, since a browser may drop a
 * body the page never read. Call it before `app` is ready (it adds a hook).
 */
export function recordErrorAnswers (app: FastifyInstance): string[] {
  const errorCodes: string[] = []
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode >= 400) errorCodes.push(`${request.method} ${request.url} ${reply.statusCode} ${JSON.parse(String(payload)).code}`)
    return payload
  })
  return errorCodes
}

/**
 * A journey's last checks: the server's error answers (`recordErrorAnswers`)
 * are exactly `expected`, in order; the pages of `log` saw those; the console
 * holds no error but the line Chromium logs for each 4xx answer; no request failed.
 */
export function expectOnlyProvokedErrors (t: Test, log: PageLog, errorCodes: string[], expected: string[]): void {
  t.same(errorCodes, expected, 'the only error answers are the ones the journey provokes')
  t.same(log.errorAnswers, errorCodes.map((line) => line.split(' ').slice(0, 3).join(' ')), 'and the browser saw those')
  // Chromium logs each 4xx answer as a console error of its own; any other error is the page's fault.
  const answerLines = log.consoleErrors.filter((text) => /^Failed to load resource: the server responded with a status of 4\d\d/.test(text))
  t.equal(answerLines.length, errorCodes.length, 'one console line per error answer')
  t.same(log.consoleErrors.filter((text) => !answerLines.includes(text)), [], 'no other error in the browser console')
  t.same(log.failedRequests, [], 'no request failed')
}

/** A loopback port nobody listens on now: a passkey's origin must be known before the plugin is registered. */
export async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/**
 * Where test `t` saves screenshots, made if missing: `t`'s own test directory,
 * or with UPDATE_SCREENSHOTS=1 the README's folder `readmeFolder` (relative to
 * the repository's root), so that a run refreshes the pictures the README shows.
 */
export function screenshotDir (t: Test, readmeFolder = 'docs/screenshots'): string {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? join(ROOT, readmeFolder) : t.testdirName
  mkdirSync(dir, { recursive: true })
  return dir
}

export interface ChromiumOptions {
  /** Options of every context opened (viewport, permissions to download, …); playwright's defaults when missing. */
  context?: BrowserContextOptions
  /** Runs on each new context and page before it is watched and handed out (grant permissions, install a clock). */
  prepare?: (context: BrowserContext, page: Page) => Promise<void>
}

export interface InChromium {
  browser: Browser
  /** The first context and its page. */
  context: BrowserContext
  page: Page
  /** What every page opened here met (see `watch`). */
  log: PageLog
  /** Another context and page, with the same options and preparation, into the same log; it closes with the browser. */
  newPage: () => Promise<{ context: BrowserContext, page: Page }>
}

/**
 * Launches Debian's chromium (`CHROMIUM`, `CHROMIUM_ARGS`) for test `t` and
 * opens one context with one page, watched into `log`; the browser is closed
 * in `t`'s teardown, so before whatever `t` set up earlier (the app it serves).
 * Rejects as playwright's `launch` does when the browser cannot start.
 */
export async function inChromium (t: Test, options: ChromiumOptions = {}): Promise<InChromium> {
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  const log: PageLog = { consoleErrors: [], failedRequests: [], errorAnswers: [] }
  const newPage = async (): Promise<{ context: BrowserContext, page: Page }> => {
    const context = await browser.newContext(options.context)
    const page = await context.newPage()
    await options.prepare?.(context, page)
    watch(page, log)
    return { context, page }
  }
  return { browser, ...await newPage(), log, newPage }
}

/** Waits until `locator` shows text matching `pattern`, then checks it (so a failure reads well). */
export async function sees (t: Test, locator: Locator, pattern: RegExp, message: string): Promise<void> {
  await locator.filter({ hasText: pattern }).first().waitFor().catch(() => {})
  t.match(await locator.first().textContent(), pattern, message)
}

/** The parts of the demo page (examples/page/) both page tests use, signed in as `username`. */
export function demoPage (page: Page, username: string, password: string) {
  return {
    status: page.locator('#status'),
    signedInHeading: page.getByRole('heading', { name: `Signed in as ${username}` }),
    row: (name: string) => page.getByRole('row', { name: new RegExp(`^${name}`) }),
    dialog: page.getByRole('dialog'),
    /** Step 1 of the login form, on `p` (default the page). */
    async logIn (p: Page = page): Promise<void> {
      await p.getByLabel('Username or email').fill(username)
      await p.locator('#login-form').getByLabel('Password').fill(password)
      await p.locator('#login-form').getByLabel('Password').press('Enter')
    },
  }
}

import { createServer } from 'node:net'
import type { Page } from 'playwright-core'

// What the browser tests of the page share: Debian's chromium, how it is
// launched, and what a page did that a test checks at the end.

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']

/** Console errors, failed requests and error answers (`METHOD /path status`) a page met. */
export interface PageLog { consoleErrors: string[], failedRequests: string[], errorAnswers: string[] }

export function watch (page: Page, log: PageLog): void {
  page.on('console', (message) => { if (message.type() === 'error') log.consoleErrors.push(message.text()) })
  page.on('pageerror', (error) => log.consoleErrors.push(`uncaught: ${error.message}`))
  page.on('requestfailed', (request) => log.failedRequests.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`))
  page.on('response', (response) => {
    if (response.status() >= 400) log.errorAnswers.push(`${response.request().method()} ${new URL(response.url()).pathname} ${response.status()}`)
  })
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

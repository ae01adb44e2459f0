// A module hook the tests load after tsx (.taprc `node-arg`). tsx leaves the
// TypeScript sources out of its source maps (`sourcesContent: [null]`) unless
// NODE_V8_COVERAGE is set, and the coverage report then maps each file to a
// single line that counts as covered. tap collects coverage through the
// inspector, not that variable, so while it does, this fills the sources in
// from the files themselves. Without coverage it registers nothing.
import { register } from 'node:module'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { isMainThread } from 'node:worker_threads'

const INLINE_MAP = '\n//# sourceMappingURL=data:application/json;base64,'

export async function load (url, context, nextLoad) {
  const result = await nextLoad(url, context)
  if (!url.startsWith('file:') || !/\.[cm]?tsx?$/.test(new URL(url).pathname) || result.source == null) return result
  const source = String(result.source)
  const at = source.lastIndexOf(INLINE_MAP)
  if (at === -1) return result
  const map = JSON.parse(Buffer.from(source.slice(at + INLINE_MAP.length).trim(), 'base64').toString('utf8'))
  if (map.sources?.length !== 1 || map.sourcesContent?.[0] != null) return result
  map.sourcesContent = [await readFile(fileURLToPath(url), 'utf8')]
  return { ...result, source: source.slice(0, at) + INLINE_MAP + Buffer.from(JSON.stringify(map), 'utf8').toString('base64') }
}

// Loaded once as an --import (register the hook), once more as the hook itself (in the loader thread).
if (isMainThread && process.env._TAPJS_PROCESSINFO_COVERAGE_ === '1') register(import.meta.url)

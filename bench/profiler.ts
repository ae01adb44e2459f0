/**
 * `--profile` only: the V8 CPU profiler (what node --cpu-prof uses), started
 * and stopped over HTTP so the profile covers the load and not the start-up.
 * POST /__bench/profile/start, then /__bench/profile/stop?name=TARGET writes DIR/TARGET.cpuprofile.
 */
import { Session } from 'node:inspector'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'

export function profilerRoutes (app: FastifyInstance, dir: string): void {
  const session = new Session()
  session.connect()
  const post = (method: string, params: object = {}): Promise<any> => new Promise((resolve, reject) => {
    session.post(method, params, (err, result) => err === null ? resolve(result) : reject(err))
  })
  app.post('/__bench/profile/start', async () => {
    await post('Profiler.enable')
    await post('Profiler.setSamplingInterval', { interval: 500 })
    await post('Profiler.start')
    return { started: true }
  })
  app.post('/__bench/profile/stop', async (request) => {
    const { profile } = await post('Profiler.stop')
    const name = (request.query as { name?: string }).name ?? 'verify'
    const file = join(dir, `${/^[a-z_]+$/.test(name) ? name : 'verify'}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    return { file }
  })
}

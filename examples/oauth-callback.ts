/**
 * Every way in gets the second step: a host route that signs a user in its
 * own way (here a fake OAuth callback standing in for a real provider) hands
 * the user to `app.authKit.startLogin`, which answers exactly what
 * `POST /login/` would: a challenge for an MFA user, a setup-only token under
 * `mfa.required`, or tokens. Run: `npx tsx examples/oauth-callback.ts`.
 *
 * In an application outside this repository, import from 'fastify-auth-kit'.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { randomBytes } from 'node:crypto'
import authKitMfa from '../src/index.js'

export async function buildOAuthExample (options: { database?: string } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(authKitMfa, {
    secret: process.env.AUTH_KIT_SECRET ?? randomBytes(32).toString('base64url'),
    database: options.database ?? 'sqlite::memory:',
    registration: true,
  })

  // A real provider redirects here with a code the host exchanges for the
  // user's verified email; the fake one trusts the `email` it is given.
  app.get<{ Querystring: { email: string } }>('/oauth/callback', {
    schema: { querystring: { type: 'object', required: ['email'], properties: { email: { type: 'string', format: 'email' } } } },
  }, async (request, reply) => {
    const user = await app.authKit.users.findByLogin(request.query.email)
    if (user == null) return reply.code(404).send({ detail: 'No account for that provider identity.' })
    return app.authKit.startLogin(request, user)
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildOAuthExample()
  await app.listen({ port: Number(process.env.PORT ?? 3001), host: '127.0.0.1' })
  console.log('Register at POST /api/auth/registration/, then GET /oauth/callback?email=…')
}

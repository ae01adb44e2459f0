// The test suite is a host that also uses @fastify/jwt (test/tokens.test.ts):
// like any such host, it types `request.user` through @fastify/jwt's own
// interface (README, "Protecting your own routes").
import type { AuthKitUserRecord } from '../src/index.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    user: AuthKitUserRecord
  }
}

/**
 * Paths a host passes to its logger's `redact` option (pino:
 * `Fastify({ logger: { redact: authKitRedactPaths } })`) so that logging
 * request or response bodies and headers writes no password, code, token,
 * secret or QR link. Fastify logs no bodies by default; this is for hosts that
 * do, under the usual names (`req`, `request`, `res`, `reply`, `response`,
 * `body`, `payload`). A logged JSON string cannot be redacted: log parsed objects.
 */
// device_token skips the second step; credential and challenge are a passkey's
// answer and the challenge it answers.
const SECRET_FIELDS = ['password', 'code', 'primary_code', 'ephemeral_token', 'refresh', 'access', 'backup_codes', 'setup_data', 'device_token', 'credential', 'challenge'] as const
const BODY_HOLDERS = ['req.body', 'request.body', 'res.body', 'reply.body', 'response.body', 'body', 'payload'] as const
const HEADER_HOLDERS = ['req.headers', 'request.headers', 'headers'] as const

export const authKitRedactPaths: string[] = [
  ...HEADER_HOLDERS.flatMap((h) => [`${h}.authorization`, `${h}.cookie`]),
  'res.headers["set-cookie"]',
  ...BODY_HOLDERS.flatMap((b) => SECRET_FIELDS.map((f) => `${b}.${f}`)),
]

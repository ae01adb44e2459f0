import t from 'tap'
import { buildApp, newUser, post, get, expectError } from '../helpers/app.js'
import { onEveryDialect } from '../helpers/dialects.js'

// Issue 8, fault 10: characters no supported database can store are a 4xx
// from the schema on every text field, and no database's words reach a client.

await onEveryDialect(t, 'NUL and lone surrogates are a 400, never a 500 with the database\'s text', async (t, scratch) => {
  const app = await buildApp({ database: scratch.url })
  t.teardown(() => app.close())
  const user = await newUser(app)
  const hostile = ['a\u0000', 'x\u0000y', '\ud800', 'ok\udfffok']
  for (const value of hostile) {
    for (const [url, body] of [
      ['/login/', { username: value, password: 'x' }],
      ['/login/', { username: user.username, password: value }],
      ['/registration/', { username: value, email: 'n@example.com', password: 'correct horse battery' }],
      ['/token/refresh/', { refresh: value }],
      ['/login/verify/', { ephemeral_token: value, code: '123456' }],
    ] as const) {
      const res = await post(app, url, body)
      expectError(t, res, 400, 'FST_ERR_VALIDATION', `${url} ${JSON.stringify(body)}`)
    }
    const method = await post(app, '/mfa/', { method: value }, user.access)
    t.equal(method.status, 400)
  }
  t.equal((await get(app, '/user/', user.access)).status, 200, 'nothing else happened to the account')
})

import t from 'tap'
import { buildApp, post, expectError } from './helpers/app.js'

t.test('registration', async (t) => {
  const app = await buildApp({ registration: true })
  t.teardown(() => app.close())

  t.test('answers 201 {user: {id, username, email}} with id a string', async (t) => {
    const res = await post(app, '/registration/', { username: 'Alice', email: 'Alice@Example.com', password: 'eight ch' })
    t.equal(res.status, 201)
    t.same(Object.keys(res.body), ['user'])
    t.same(Object.keys(res.body.user).sort(), ['email', 'id', 'username'])
    t.type(res.body.user.id, 'string')
    t.ok(res.body.user.id.length > 0)
    t.equal(res.body.user.username, 'Alice')
    t.equal(res.body.user.email, 'Alice@Example.com')
    t.notOk('password' in res.body.user)
  })

  t.test('a password shorter than 8 characters is a 400 FST_ERR_VALIDATION', async (t) => {
    const res = await post(app, '/registration/', { username: 'shorty', email: 'shorty@example.com', password: 'seven77' })
    expectError(t, res, 400, 'FST_ERR_VALIDATION')
    t.same(Object.keys(res.body).sort(), ['code', 'error', 'message', 'statusCode'])
    // Nothing was made: the same name registers with a good password.
    t.equal((await post(app, '/registration/', { username: 'shorty', email: 'shorty@example.com', password: 'eight888' })).status, 201)
  })

  t.test('a missing field is a 400 FST_ERR_VALIDATION', async (t) => {
    for (const body of [
      { email: 'x@example.com', password: 'long enough' },
      { username: 'nomail', password: 'long enough' },
      { username: 'nopass', email: 'nopass@example.com' },
    ]) {
      const res = await post(app, '/registration/', body)
      expectError(t, res, 400, 'FST_ERR_VALIDATION', JSON.stringify(body))
    }
  })

  t.test('a username taken in any case is a 409 AUTH_KIT_USERNAME_TAKEN', async (t) => {
    t.equal((await post(app, '/registration/', { username: 'Bob', email: 'bob@example.com', password: 'long enough' })).status, 201)
    const res = await post(app, '/registration/', { username: 'bOB', email: 'other-bob@example.com', password: 'long enough' })
    expectError(t, res, 409, 'AUTH_KIT_USERNAME_TAKEN')
  })

  t.test('an email taken in any case is a 409 AUTH_KIT_USERNAME_TAKEN', async (t) => {
    t.equal((await post(app, '/registration/', { username: 'carol', email: 'Carol@Example.com', password: 'long enough' })).status, 201)
    const res = await post(app, '/registration/', { username: 'carol2', email: 'CAROL@example.COM', password: 'long enough' })
    expectError(t, res, 409, 'AUTH_KIT_USERNAME_TAKEN')
  })

  t.test('the user logs in by username or by email, in any case', async (t) => {
    t.equal((await post(app, '/registration/', { username: 'Dave', email: 'Dave@Example.com', password: 'dave password' })).status, 201)
    for (const login of ['Dave', 'dave', 'DAVE', 'Dave@Example.com', 'dave@example.com', 'DAVE@EXAMPLE.COM']) {
      const res = await post(app, '/login/', { username: login, password: 'dave password' })
      t.equal(res.status, 200, login)
      t.equal(res.body.user?.username, 'Dave')
    }
    const wrong = await post(app, '/login/', { username: 'dave', password: 'DAVE PASSWORD' })
    expectError(t, wrong, 401, 'AUTH_KIT_INVALID_CREDENTIALS', 'the password is compared exactly')
  })

  t.test('the path without its trailing slash works too', async (t) => {
    const res = await post(app, '/registration', { username: 'erin', email: 'erin@example.com', password: 'long enough' })
    t.equal(res.status, 201)
  })
})

t.test('registration: false (the default) exposes no registration route', async (t) => {
  const app = await buildApp({ registration: false })
  t.teardown(() => app.close())
  for (const url of ['/registration/', '/registration']) {
    const res = await post(app, url, { username: 'frank', email: 'frank@example.com', password: 'long enough' })
    t.equal(res.status, 404, url)
  }
})

t.test('registration is off when the option is left out', async (t) => {
  // buildApp turns registration on; undefined here stands for leaving the option out.
  const app = await buildApp({ registration: undefined })
  t.teardown(() => app.close())
  t.equal((await post(app, '/registration/', { username: 'gina', email: 'gina@example.com', password: 'long enough' })).status, 404)
})

t.test('a username may not be another account\'s email address, nor the reverse (login takes either)', async (t) => {
  const app = await buildApp({ registration: true })
  t.teardown(() => app.close())
  t.equal((await post(app, '/registration/', { username: 'carol', email: 'carol@example.com', password: 'long enough' })).status, 201)
  const asUsername = await post(app, '/registration/', { username: 'CAROL@example.com', email: 'mallory@example.com', password: 'long enough' })
  expectError(t, asUsername, 409, 'AUTH_KIT_USERNAME_TAKEN')
  const asEmail = await post(app, '/registration/', { username: 'mallory', email: 'Carol@Example.com', password: 'long enough' })
  t.equal(asEmail.status, 409)
  t.equal((await post(app, '/registration/', { username: 'dave@example.org', email: 'dave@example.org', password: 'long enough' })).status, 201, 'a username may look like an address')
})

import t from 'tap'
import { AuthKitErrors } from '../src/index.js'
import { retryLater, waitInWords } from '../src/errors.js'

// Issue 11: a 429 says how long to wait in words as well as in Retry-After,
// rounded up so that coming back at the time it names is never too early.
t.test('a wait in words is rounded up to the unit a person reads', async (t) => {
  const cases: Array<[number, string]> = [
    [0.2, '1 second'], [1, '1 second'], [18, '18 seconds'], [119, '119 seconds'], [119.5, '2 minutes'], [120, '2 minutes'], [121, '3 minutes'],
    [800, '14 minutes'], [900, '15 minutes'], [7140, '119 minutes'], [7200, '2 hours'], [7201, '2 hours 1 minute'],
    [28_800, '8 hours'], [86_400, '24 hours'],
  ]
  for (const [seconds, words] of cases) t.equal(waitInWords(seconds), words, `${seconds} s`)
})

t.test('retryLater gives the message and Retry-After one and the same wait', async (t) => {
  const err = retryLater(AuthKitErrors.TooManyAttempts, 899.2)
  t.equal(err.retryAfter, 900)
  t.equal(err.message, 'Too many wrong codes. Try again in 15 minutes.')
  t.equal(err.code, 'AUTH_KIT_TOO_MANY_ATTEMPTS')
  t.equal(err.statusCode, 429)
  t.equal(retryLater(AuthKitErrors.ResendTooSoon, 0).retryAfter, 1, 'never less than a second')
  t.equal(retryLater(AuthKitErrors.LoginThrottled, 300).message, 'Too many wrong passwords from this address. Try again in 5 minutes.')
})

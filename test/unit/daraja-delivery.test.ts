import { asDarajaError, classifyDarajaFailure, networkFailure, notSent } from '../../src/vendors/daraja-errors';

/**
 * Whether a failed request may still have reached Daraja decides between "push again" and "wait for
 * the callback" (STK Push has no idempotency key).
 */
describe('did the request reach Daraja?', () => {
  test.each(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH'])('when connecting fails with %s, then it was never delivered', (code) => {
    expect(networkFailure({ code, message: code })).toMatchObject({ kind: 'retry', code, maybeProcessed: false });
  });

  test.each(['ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', undefined])('when the request fails with %s (after it may have been sent), then the outcome is unknown', (code) => {
    expect(networkFailure({ code, message: 'socket hang up' })).toMatchObject({ kind: 'retry', maybeProcessed: true });
  });

  test.each([
    [500, { errorCode: '500.003.02', errorMessage: 'Spike arrest violation' }, false],
    // A gateway's error page (no Daraja envelope) may hide a request that went through.
    [503, '<html>Service Unavailable</html>', true],
    [502, 'Bad Gateway', true],
    [503, { errorCode: '503.001.01', errorMessage: 'Service unavailable' }, false],
    [400, { errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PhoneNumber' }, false],
    [404, { errorCode: '404.001.03', errorMessage: 'Invalid Access Token' }, false],
    [504, '<html>Gateway Time-out</html>', true],
  ])('when Daraja answers HTTP %d, then maybeProcessed is %s', (status, body, maybe) => {
    expect(classifyDarajaFailure(status, body).maybeProcessed).toBe(maybe);
  });

  test('when the token could not be fetched, then the request itself was never sent, whatever the token call saw', () => {
    const e = notSent(networkFailure({ code: 'ECONNRESET', message: 'socket hang up' }));
    expect(e).toMatchObject({ code: 'ECONNRESET', maybeProcessed: false, message: 'daraja ECONNRESET: socket hang up' });
  });
});

describe('asDarajaError: one rule for anything a Daraja call throws', () => {
  test('when the client already classified it, then it passes through unchanged', () => {
    const e = classifyDarajaFailure(400, { errorCode: '400.002.02', errorMessage: 'Bad Request' });
    expect(asDarajaError(e)).toBe(e);
  });

  test('when our own request check throws a RangeError (before any request leaves), then it is permanent and certainly not sent', () => {
    expect(asDarajaError(new RangeError('amount must be whole KES'))).toMatchObject({ kind: 'permanent', code: 'invalid_request', maybeProcessed: false });
  });

  test.each([new Error('boom'), new TypeError('x is undefined'), 'a string'])('when anything else is thrown (%p), then it is retried and may have been processed', (thrown) => {
    expect(asDarajaError(thrown)).toMatchObject({ vendor: 'daraja', kind: 'retry', code: 'unexpected', maybeProcessed: true });
  });
});

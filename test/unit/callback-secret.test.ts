import { secretMatches } from '../../src/http/callback-guard';

describe('the callback secret comparison', () => {
  test('when secrets are compared, then only the exact secret matches, and every comparison goes through crypto.timingSafeEqual on equal-length digests', () => {
    // The module object itself, as the compiled code reads it at each call.
    const spy = jest.spyOn(require('node:crypto') as typeof import('node:crypto'), 'timingSafeEqual');
    try {
      expect(secretMatches('s3cr3t-Path-9f8e', 's3cr3t-Path-9f8e')).toBe(true);
      for (const wrong of ['', 's3cr3t-Path-9f8', 's3cr3t-Path-9f8e0', 'S3CR3T-PATH-9F8E', 'x'.repeat(10_000)]) expect(secretMatches(wrong, 's3cr3t-Path-9f8e')).toBe(false);
      expect(spy).toHaveBeenCalledTimes(6);
      for (const [a, b] of spy.mock.calls) expect([(a as Buffer).length, (b as Buffer).length]).toEqual([32, 32]);
    } finally {
      spy.mockRestore();
    }
  });
});

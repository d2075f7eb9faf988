import nock from 'nock';

// Only the vendor edge is mocked; every other outbound connection but this machine is refused.
// nock patches Node's http module, which outlives each test file's module registry: activate it
// for this file and restore it after, or the next file in the same worker talks to a stale interceptor.
if (!nock.isActive()) nock.activate();
nock.disableNetConnect();
nock.enableNetConnect(/^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/);

afterAll(() => {
  nock.cleanAll();
  nock.enableNetConnect();
  nock.restore();
});

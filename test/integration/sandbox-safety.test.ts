import { startTestService, type TestService } from '../support/harness';

describe('emulators and simulator outside emulator mode', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(); // MPESA_ENVIRONMENT=sandbox
  });
  afterAll(() => svc.close());

  test.each([
    ['GET', '/simulator'],
    ['GET', '/simulator/config'],
    ['GET', '/emulators/daraja/oauth/v1/generate?grant_type=client_credentials'],
    ['GET', '/emulators/daraja/prompts?phone=254712345678'],
    ['POST', '/emulators/at/version1/messaging'],
  ])('when MPESA_ENVIRONMENT is sandbox, then %s %s is not mounted (404)', async (method, path) => {
    const res = await fetch(`${svc.url}${path}`, { method });
    expect(res.status).toBe(404);
  });
});

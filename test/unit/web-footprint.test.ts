import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * A web process never sends SMS and rarely serves the queue dashboard: the Africa's Talking SDK (~32 MB RSS)
 * and Bull Board (~17 MB) are loaded when first used, not when the service module loads (npm test builds dist/ first).
 * So is libphonenumber-js (~10 MB): phone numbers in the usual forms are answered without it (src/lib/msisdn.ts).
 */
test('loading the built service does not load the Africa\'s Talking SDK, Bull Board or libphonenumber-js', () => {
  const root = path.resolve(__dirname, '../..');
  const loaded = execFileSync(process.execPath, ['-e', `require('./dist/src/server'); console.log(JSON.stringify(Object.keys(require.cache).filter((k) => /node_modules[\\\\/](africastalking|@bull-board|libphonenumber-js)[\\\\/]/.test(k))))`], { cwd: root, encoding: 'utf8' });
  expect(JSON.parse(loaded)).toEqual([]);
});

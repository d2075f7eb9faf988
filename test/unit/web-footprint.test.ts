import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * A web process never sends SMS and rarely serves the queue dashboard: the Africa's Talking SDK (~32 MB RSS)
 * and Bull Board (~17 MB) are loaded when first used, not when the service module loads (npm test builds dist/ first).
 */
test('loading the built service does not load the Africa\'s Talking SDK or Bull Board', () => {
  const root = path.resolve(__dirname, '../..');
  const loaded = execFileSync(process.execPath, ['-e', `require('./dist/src/server'); console.log(JSON.stringify(Object.keys(require.cache).filter((k) => /node_modules[\\\\/](africastalking|@bull-board)[\\\\/]/.test(k))))`], { cwd: root, encoding: 'utf8' });
  expect(JSON.parse(loaded)).toEqual([]);
});

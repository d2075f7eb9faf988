import path from 'node:path';
import { Router, type Response } from 'express';
import { projectRoot } from '../../lib/project-root';

/**
 * The operator console's static files. They hold no data and need no token: the page asks the
 * operator for the ops token and calls the ops API with it (bearer header) from the browser.
 */
const FILES = {
  '/console': 'index.html',
  '/console/console.js': 'console.js',
  '/console/console.css': 'console.css',
  '/console/favicon.svg': 'favicon.svg',
} as const;

/**
 * The page runs only its own script and style and talks only to this origin; it cannot be framed
 * (clickjacking an "approve credit" button), sends no Referer, and a form can never be submitted by
 * the browser itself (so the token can never end up in a URL even if the script failed to load).
 */
export const CONSOLE_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** GET /console (and its script and style). Mounted only when OPS_API_TOKEN is set, like the ops routes. */
export function consoleRouter(): Router {
  const dir = path.join(projectRoot(), 'console');
  const router = Router();
  for (const [route, file] of Object.entries(FILES)) {
    router.get(route, (_req, res: Response, next) => {
      res.sendFile(path.join(dir, file), { headers: CONSOLE_HEADERS, cacheControl: false }, (err) => {
        if (err && !res.headersSent) next(err); // missing file: the app's 404
      });
    });
  }
  return router;
}

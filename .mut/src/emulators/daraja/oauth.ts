import { randomInt } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { sendEnvelope } from './wire';

const TOKEN_LIFETIME_SECONDS = 3599;
const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Daraja's client-credentials OAuth. Only one token is valid at a time: issuing a new one revokes
 * the previous one, which is exactly what breaks naive multi-process clients in production.
 */
export class EmulatedOAuth {
  private current: { token: string; expiresAt: number } | null = null;

  constructor(
    private readonly credentials: { consumerKey: string; consumerSecret: string },
    private readonly now: () => Date,
  ) {}

  /** GET /oauth/v1/generate?grant_type=client_credentials */
  readonly generate = (req: Request, res: Response): void => {
    if (!this.basicCredentialsMatch(req.headers.authorization)) {
      sendEnvelope(res, 400, '400.008.01', 'Invalid Authentication passed');
      return;
    }
    if (req.query.grant_type !== 'client_credentials') {
      sendEnvelope(res, 400, '400.008.02', 'Invalid grant type passed');
      return;
    }
    const token = Array.from({ length: 28 }, () => TOKEN_ALPHABET[randomInt(0, TOKEN_ALPHABET.length)]).join('');
    this.current = { token, expiresAt: this.now().getTime() + TOKEN_LIFETIME_SECONDS * 1000 };
    // expires_in is a string on the wire, as Daraja sends it.
    res.json({ access_token: token, expires_in: String(TOKEN_LIFETIME_SECONDS) });
  };

  /** Middleware for the API endpoints: Daraja answers a bad token with HTTP 404 (sic), before reading the body. */
  readonly requireBearer = (req: Request, res: Response, next: NextFunction): void => {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const valid = m !== null && this.current !== null && m[1] === this.current.token && this.now().getTime() < this.current.expiresAt;
    if (!valid) {
      sendEnvelope(res, 404, '404.001.03', 'Invalid Access Token');
      return;
    }
    next();
  };

  private basicCredentialsMatch(header: string | undefined): boolean {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon > 0 && decoded.slice(0, colon) === this.credentials.consumerKey && decoded.slice(colon + 1) === this.credentials.consumerSecret;
  }
}

import type { Response } from 'express';
import type { z } from 'zod';

/**
 * The one shape of a refused ops request: 400 `{error, issues: ["path: message", ...]}`. Returns the
 * parsed value, or undefined once the 400 is sent (the route then returns). Vendor callbacks answer in
 * their vendor's shape instead (src/http/routes/*-callbacks.ts).
 */
export function parseOr400<S extends z.ZodType>(res: Response, schema: S, value: unknown, error: 'invalid_request' | 'invalid_query' = 'invalid_request'): z.output<S> | undefined {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  res.status(400).json({ error, issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
  return undefined;
}

import { en, type Catalog } from './en';
import { sw } from './sw';

export const LANGUAGES = ['en', 'sw'] as const;
export type Language = (typeof LANGUAGES)[number];
const catalogs: Record<Language, Catalog> = { en, sw };

export function isLanguage(value: string): value is Language {
  return (LANGUAGES as readonly string[]).includes(value);
}

/** The catalog of a customer's language; English for anything unknown. */
export function catalogFor(language: string): Catalog {
  return isLanguage(language) ? catalogs[language] : en;
}

export type { Catalog };

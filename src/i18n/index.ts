import { en, type Catalog } from './en';

export type Language = 'en';
const catalogs: Record<Language, Catalog> = { en };

export function catalogFor(language: string): Catalog {
  return catalogs[language as Language] ?? en;
}

export type { Catalog };

/** The package version, read once from package.json (two levels up from src/util and dist/util). */
import { readFileSync } from 'node:fs';

export const SITEDNS_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

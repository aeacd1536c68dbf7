/**
 * The zone format as a JSON Schema (draft 2020-12), generated from the zod schema (schema.ts) by
 * zod's own `z.toJSONSchema`, so that editors complete and check zone files
 * (`# yaml-language-server: $schema=...`, docs/zones.md "Editor support"). It describes the shape
 * a file may have; `sitedns check` stays the judge of what the schema cannot say (cross-references
 * between sites, groups and pools, address syntax, DNS name rules).
 *
 * schema/zone.schema.json is this function's output, shipped in the package; a test keeps the two
 * equal (`npm run schema` writes it).
 */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { DURATION_PATTERN, duration } from '../util/duration.js';
import { zoneFileSchema } from './schema.js';

/** The JSON Schema of a zone file, as written to schema/zone.schema.json. */
export function zoneJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(zoneFileSchema, {
    target: 'draft-2020-12',
    // A file is the schema's input: defaults make a key optional, transforms are not applied.
    io: 'input',
    // Refinements (an address, a DNS name) cannot be written in JSON Schema: `check` tests them.
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      // Durations are text with a unit (a bare number is refused, but 0).
      if (zodSchema === duration) {
        for (const key of Object.keys(jsonSchema)) delete (jsonSchema as Record<string, unknown>)[key];
        Object.assign(jsonSchema, { anyOf: [{ type: 'string', pattern: DURATION_PATTERN }, { const: 0 }], description: 'a duration: a number and a unit (d, h, m, s, ms), largest first, e.g. 500ms, 1.5s, 1h30m, 2d' });
      }
    },
  });
  return { ...generated, title: 'sitedns zone file', description: 'One zone served by sitedns (docs/zones.md).' };
}

/** The shipped file's text. */
export function zoneJsonSchemaText(): string {
  return JSON.stringify(zoneJsonSchema(), null, 2) + '\n';
}

/** `npm run schema`: writes schema/zone.schema.json. */
export function writeZoneJsonSchema(path = new URL('../../schema/zone.schema.json', import.meta.url)): void {
  writeFileSync(path, zoneJsonSchemaText());
}

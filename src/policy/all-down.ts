/**
 * What a name answers when none of its candidate sites is up (`all_down:` per name, #4).
 * One place, so every policy agrees.
 */
import type { DynamicName } from '../model/zone-model.js';
import { hasFamily, type Family, type Selection } from './types.js';

export function allDownSelection(name: DynamicName, family: Family): Selection {
  const candidates = name.sites.filter((s) => hasFamily(s, family));
  switch (name.allDown) {
    case 'all':
      return candidates.length > 0 ? { kind: 'sites', sites: candidates, reason: 'all down: every address' } : { kind: 'nodata', reason: 'all down: no address of this family' };
    case 'first':
      return candidates.length > 0 ? { kind: 'sites', sites: [candidates[0]], reason: 'all down: first in order' } : { kind: 'nodata', reason: 'all down: no address of this family' };
    case 'sorry':
      return { kind: 'sorry', reason: 'all down: sorry address' };
    case 'nodata':
      return { kind: 'nodata', reason: 'all down: nodata' };
    case 'servfail':
      return { kind: 'servfail', reason: 'all down: servfail' };
  }
}

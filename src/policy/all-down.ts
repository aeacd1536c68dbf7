/**
 * What a name answers when none of its candidate sites is up (`all_down:` per name). One
 * place, so every policy agrees. Every selection made here carries `allDown: true`, which the
 * handler's all-down watch (all-down-watch.ts) turns into one log line and one metric increment
 * per transition.
 *
 * "Sites are up but none with an address of the asked family is" answers the same way (the
 * all_down rule, for that family) but is not flagged `allDown`: the all-down *state* (metric,
 * log) means no candidate is up at all, so A and AAAA queries agree on it.
 */
import type { DynamicName } from '../model/zone-model.js';
import { stateOf, type StateSnapshot } from '../state/snapshot.js';
import { hasFamily, type Family } from './types.js';
import type { Selection } from '../model/selection.js';

export function allDownSelection(name: DynamicName, family: Family, allDown = true): Selection {
  const candidates = name.sites.filter((s) => hasFamily(s, family));
  const selection = ruleSelection(name, candidates);
  return allDown ? selection : { ...selection, allDown: false };
}

function ruleSelection(name: DynamicName, candidates: DynamicName['sites']): Selection {
  switch (name.allDown) {
    case 'all':
      return candidates.length > 0
        ? { kind: 'sites', sites: candidates, reason: 'all down: every address', allDown: true }
        : { kind: 'nodata', reason: 'all down: no address of this family', allDown: true };
    case 'first':
      return candidates.length > 0
        ? { kind: 'sites', sites: [candidates[0]], reason: 'all down: first in order', allDown: true }
        : { kind: 'nodata', reason: 'all down: no address of this family', allDown: true };
    case 'sorry':
      return { kind: 'sorry', reason: 'all down: sorry address', allDown: true };
    case 'nodata':
      return { kind: "nodata", reason: "all down: nodata", allDown: true };
    case 'servfail':
      return { kind: 'servfail', reason: 'all down: servfail', allDown: true };
  }
}

/** The answer when no candidate could be chosen: the all_down rule, flagged only if none is up. */
export function nothingChosen(name: DynamicName, family: Family, snapshot: StateSnapshot): Selection {
  for (const site of name.sites) if (stateOf(snapshot, site.key).up) return allDownSelection(name, family, false);
  return allDownSelection(name, family);
}

/**
 * Hysteresis current sites shared by every nameserver of one store (docs/state.md, "Hysteresis
 * current sites"). The stay-or-move rule (hysteresis.ts) runs where each nameserver builds its
 * snapshot; what makes the nameservers agree is its previous input: the store's record when
 * there is one, so a nameserver started after the first pick adopts that site while it is still
 * a valid stay, and its own last decision only for lists the store has none for. A nameserver
 * writes a decision back when it differs from the record and is its own change (a first pick,
 * or a move from the record). The rule being deterministic, nameservers that see the same states
 * decide the same move and write the same value; with states seen a moment apart, the store's
 * order of writes decides, and every nameserver then adopts the last one written. Pure; the
 * state follower is given it (app/serve-app.ts), state/ being below policy/.
 */
import type { ZoneSet } from '../model/zone-model.js';
import type { SiteState } from '../state/snapshot.js';
import type { CurrentSite } from '../state/types.js';
import { decideCurrentSites, hysteresisLists } from './hysteresis.js';

export interface SharedCurrentSites {
  /** List key -> site id: what the snapshot publishes. */
  readonly current: Map<string, string>;
  /** The decisions to write to the store (list key -> site id). */
  readonly writes: Map<string, string>;
}

/**
 * The current sites from the store's records (`stored`) and this nameserver's last published
 * ones (`own`), for the site states at `now`; and which of them to write.
 */
export function shareCurrentSites(
  zones: ZoneSet,
  stored: ReadonlyMap<string, CurrentSite>,
  own: ReadonlyMap<string, string>,
  states: ReadonlyMap<string, SiteState>,
  now: number,
): SharedCurrentSites {
  if (hysteresisLists(zones).length === 0) return { current: new Map(), writes: new Map() };
  const previous = new Map(own);
  for (const [key, record] of stored) previous.set(key, record.site);
  const current = decideCurrentSites(zones, previous, states, now);
  const writes = new Map<string, string>();
  for (const [key, site] of current) {
    const recorded = stored.get(key)?.site;
    // A record this nameserver cannot stay on (another zone version, say) is not overwritten
    // with the site it already answers: two nameservers that disagree on the candidates must
    // not take turns rewriting the record.
    if (recorded !== site && (recorded === undefined || own.get(key) !== site)) writes.set(key, site);
  }
  return { current, writes };
}

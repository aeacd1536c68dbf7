/**
 * Operation 500 of seed 004 (Fig. 5A, Fig. 5B; Appendix B Steps 1-3) as one pure function:
 * (this site's view of the zone, the request's Host and markers, the time, two lazy hooks) ->
 * pass to the application | redirect to a name | "all sites busy". No I/O; the middleware turns
 * the decision into a response, so every branch is testable with plain values.
 *
 * Requests in a session never get here (the seed: "requests which do correspond to existing,
 * active session state are handled immediately ... bypassing operation 500 completely").
 */
import type { GroupModel, SiteModel } from '../model/zone-model.js';
import { checkMarker, checkMarkers, MAX_MARKERS_CHECKED, type MarkerFields, type MarkerKeys, type MarkerTiming } from './marker.js';
import type { AffinityZone } from './zone.js';

export interface RequestFacts {
  /** The Host header's name (lower case, no port, no trailing dot); undefined without one. */
  readonly host: string | undefined;
  /** Raw marker values found in the URL. */
  readonly markers: readonly string[];
  readonly nowMs: number;
}

export interface DecisionHooks {
  /** Stage 530 "Determine proper Group for this request"; undefined: any group (the Pool). */
  properGroup(): GroupModel | undefined;
  /** Stage 550 "is this site too busy". */
  isBusy(): boolean;
}

export type Decision =
  /** Stage 588: start the new session here, deliver the page. */
  | { readonly kind: 'pass'; readonly stage: 588; readonly reason: string }
  /** Stages 540 (to this Site Name), 545 (to the proper Group/Pool Name), 595 (overflow to the next Site Name). */
  | { readonly kind: 'redirect'; readonly stage: 540 | 545 | 595; readonly host: string; readonly marker: MarkerFields | undefined; readonly reason: string }
  /** Stage 570: every site of the group is too busy. */
  | { readonly kind: 'busy'; readonly stage: 570; readonly reason: string };

export interface DecideContext {
  readonly zone: AffinityZone;
  readonly keys: MarkerKeys;
  readonly timing: MarkerTiming;
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** The circularly next site of a ring after `site` (Appendix B: "ordinally-next ... with wraparound"). */
export function circularNext(ring: readonly SiteModel[], site: SiteModel): SiteModel {
  const at = ring.indexOf(site);
  return ring[(at + 1) % ring.length];
}

export function decide(ctx: DecideContext, facts: RequestFacts, hooks: DecisionHooks): Decision {
  const { self, pool } = ctx.zone;
  let proper: { group: GroupModel | undefined } | undefined;
  const properGroup = () => (proper ??= { group: hooks.properGroup() }).group;

  /** Stage 545's target: "the proper Group Name (or Pool Name if no groups are defined)". */
  const redistribute = (reason: string): Decision => {
    const group = properGroup();
    // A site in no pool (groups only) falls back to its own first group's name.
    const host = group?.name ?? pool?.name ?? ctx.zone.homeGroups[0].name;
    return { kind: 'redirect', stage: 545, host, marker: undefined, reason };
  };

  // ---- Step 1, lock-down (stages 505-545) --------------------------------------------------
  // Stage 510: Appendix B acts only when a Host header exists and is not this Site Name.
  if (facts.host !== undefined && facts.host !== self.name) {
    // Stage 525: is the Host the Pool Name?
    if (pool && facts.host === pool.name) {
      // Stage 530: the proper group for this request vs. the groups this site serves.
      const group = properGroup();
      if (group === undefined || group.sites.includes(self)) {
        // Stages 535 -> 540: this Site Name, with a fresh timestamped marker.
        return { kind: 'redirect', stage: 540, host: self.name, marker: { issuedAt: seconds(facts.nowMs), to: self.id }, reason: 'pool name, proper group' };
      }
      return { kind: 'redirect', stage: 545, host: group.name, marker: undefined, reason: `pool name, proper group is ${group.id}` };
    }
    // Stages 525 -> 535 -> 540: a Group Name, the Site Name of a site that failed over to this
    // one, or another alias. Beyond the seed: an overflow chain (Fig. 5B) that reaches this site
    // through DNS failover of a dead site's Site Name keeps its initial site and start time, so
    // the chain still ends when it comes back round instead of starting over here forever.
    const hostSite = ctx.zone.siteByName.get(facts.host);
    let carried: MarkerFields | undefined;
    if (hostSite) {
      for (const raw of facts.markers.slice(0, MAX_MARKERS_CHECKED)) {
        const check = checkMarker(ctx.keys, ctx.timing, raw, hostSite.id, facts.nowMs);
        if (check.ok && check.marker.initial !== undefined) {
          carried = check.marker;
          break;
        }
      }
    }
    const marker: MarkerFields = carried
      ? { issuedAt: carried.issuedAt, to: self.id, initial: carried.initial, ...(carried.group ? { group: carried.group } : {}) }
      : { issuedAt: seconds(facts.nowMs), to: self.id };
    return { kind: 'redirect', stage: 540, host: self.name, marker, reason: hostSite ? `site name of ${hostSite.id} (failed over here)` : 'not this site name' };
  }

  // ---- Step 2, redistribution (stages 515-520) ---------------------------------------------
  // Stage 515: is there a marker? Stage 520: has it expired? Either failure means the client
  // came straight to the Site Name (a bookmark, a typed name) and bypassed load balancing.
  const check = checkMarkers(ctx.keys, ctx.timing, facts.markers, self.id, facts.nowMs);
  if (!check.ok) return redistribute(`site name without a valid marker (${check.reason})`);
  const marker = check.marker;

  // ---- Step 3, overflow (Fig. 5B, stages 550-595) ------------------------------------------
  // Stage 550: not too busy -> stage 588, the application starts the session.
  if (!hooks.isBusy()) return { kind: 'pass', stage: 588, reason: marker.initial ? `overflow from ${marker.initial} accepted` : 'valid marker' };

  const ring = overflowRing(ctx.zone, marker.group, properGroup);
  // Stage 555: does the marker carry an Initial Site (overflow already under way)? Stage 560,
  // its expiry, was checked with the marker at stage 520 (one timestamp, one expiry).
  // An initial site outside the ring walked here cannot end the chain: begin a new one instead.
  if (marker.initial !== undefined && ring.sites.some((s) => s.id === marker.initial)) {
    const initial = marker.initial; // stage 575
    // Came back round to where it began (possible when DNS failover skipped a dead site).
    if (initial === self.id) return { kind: 'busy', stage: 570, reason: `overflow came back to ${initial}` };
    const next = circularNext(ring.sites, self); // stage 580
    // Stage 585: the next site is where overflow began: every site has been tried.
    if (next.id === initial || next === self) return { kind: 'busy', stage: 570, reason: `every site of ${ring.id} tried since ${initial}` };
    // Stage 595: on to the next site, same initial site and start time.
    return { kind: 'redirect', stage: 595, host: next.name, marker: { issuedAt: marker.issuedAt, to: next.id, initial, ...(ring.group ? { group: ring.id } : {}) }, reason: `busy; overflow from ${initial} continues` };
  }
  const next = circularNext(ring.sites, self); // stage 565
  // Stage 567: this is the only site of its group.
  if (next === self) return { kind: 'busy', stage: 570, reason: 'busy and the only site of its group' };
  // Stages 590 -> 595: begin overflow with this site as the Initial Site.
  return {
    kind: 'redirect',
    stage: 595,
    host: next.name,
    marker: { issuedAt: seconds(facts.nowMs), to: next.id, initial: self.id, ...(ring.group ? { group: ring.id } : {}) },
    reason: 'busy; overflow begins',
  };
}

interface Ring {
  readonly sites: readonly SiteModel[];
  /** The group walked, when it is a group (its id travels in the marker). */
  readonly group: GroupModel | undefined;
  readonly id: string;
}

/**
 * The ordered sites overflow walks (Appendix B: "the ordinally-next Site in the Group"): the
 * group named in the marker when this site is in it (every hop walks the same ring), else the
 * proper group for the request, else this site's first group, else its pool ("if groups are
 * not defined ... the pool").
 */
function overflowRing(zone: AffinityZone, markerGroup: string | undefined, properGroup: () => GroupModel | undefined): Ring {
  const { self, pool } = zone;
  const fromMarker = markerGroup !== undefined ? zone.groupByKey.get(markerGroup) : undefined;
  const candidates = [fromMarker, properGroup(), zone.homeGroups[0]];
  for (const g of candidates) if (g && g.sites.includes(self)) return { sites: g.sites, group: g, id: g.id };
  if (pool) return { sites: pool.sites, group: undefined, id: pool.name };
  return { sites: [self], group: undefined, id: self.id };
}

/**
 * `import { siteAffinity } from "sitedns/affinity"`: the web-site half of seed 004 (Figs. 5A/5B,
 * Appendix B). docs/affinity.md explains the flow.
 */
export { siteAffinity, DEFAULT_PARAM, DEFAULT_BUSY_PAGE, MIN_SECRET_BYTES, type SiteAffinity, type SiteAffinityOptions, type Handler, type Next, type Duration } from './middleware.js';
export { decide, circularNext, type Decision, type DecisionHooks, type RequestFacts, type DecideContext } from './decide.js';
export { signMarker, checkMarker, checkMarkers, type MarkerFields, type MarkerCheck, type MarkerKeys, type MarkerTiming } from './marker.js';
export { groupByTopology } from './topology.js';
export { parseTarget, parseHost, buildLocation, type RequestTarget, type HostHeader } from './url.js';
export { affinityZone, compileZoneFile, type AffinityZone } from './zone.js';
export { AffinityError, type AffinityErrorCode } from './errors.js';
export { durationMs, DurationError } from '../util/duration.js';

/** Library entry: the pieces other programs (and tests) build on. */
export { startNameserver, type Nameserver, type NameserverOptions } from './server/nameserver.js';
export { Handler } from './server/handler.js';
export type { RequestContext } from './server/request-context.js';
export { Runtime } from './state/runtime.js';
export { ReloadController, type Prebuild } from './zones/reload.js';
// What a ReloadController of a process that answers queries is given as `prebuild`.
export { prebuildTableInSlices } from './server/fast-path.js';
export { ZoneStore } from './zones/zone-store.js';
export { loadZoneDirectory, loadZoneFile, parseZoneText } from './config/load.js';
export { compileZone, compileZoneFiles, makeZoneSet } from './config/compile.js';
export { formatProblem, type ConfigProblem } from './config/errors.js';
export { makeSnapshot, EMPTY_SNAPSHOT, type SiteState, type StateSnapshot } from './state/snapshot.js';

/** Coded errors of the site-affinity middleware (configuration mistakes fail at start-up). */
import { CodedError } from '../util/coded-error.js';

export type AffinityErrorCode =
  | 'EAFFINITY_ZONE' // the zone file could not be loaded or compiled
  | 'EAFFINITY_SITE' // "I am site X" names no site of the zone
  | 'EAFFINITY_SECRET' // missing or too short a shared secret
  | 'EAFFINITY_OPTION' // another option is missing or malformed
  | 'EAFFINITY_HOOK' // a hook returned something unusable (a Promise, an unknown group)
  | 'EAFFINITY_NOWHERE'; // the site is in no pool and no group: nowhere to redistribute to

export class AffinityError extends CodedError<AffinityErrorCode> {}

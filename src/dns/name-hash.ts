/** Hashing wire names: the key of the prebuilt-answer table and of response rate classes. */

/**
 * FNV-1a over a wire name's bytes from `start` to `end`, ASCII letters folded to lower case
 * (label lengths are under 0x41, so folding leaves them alone). The prebuilt-answer table keys
 * names by it; rate classes hash names with it.
 */
export function hashWireName(buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    let c = buf[i];
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h;
}

/** FNV-1a (32-bit) offset basis and prime. */
export const FNV_OFFSET = 0x811c9dc5 | 0;
export const FNV_PRIME = 0x01000193;

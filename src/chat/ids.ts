/**
 * Message ids are `"<ms>-<seq>"`, the form of a Redis stream id (the memory engine makes the same
 * form), each part an unsigned 64-bit integer in its canonical spelling (no leading zeros: ids from
 * the engines are, and a client's `since` is made so at the boundary). They compare by their first
 * number, then their second.
 */
export function compareIds(a: string, b: string): number {
  const da = a.indexOf("-");
  const db = b.indexOf("-");
  // Canonical digits compare exactly by length, then as strings: no precision lost past 2^53.
  return compareDigits(a.slice(0, da), b.slice(0, db)) || compareDigits(a.slice(da + 1), b.slice(db + 1));
}

function compareDigits(x: string, y: string): number {
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x === y ? 0 : x < y ? -1 : 1;
}

/** Makes increasing ids of the Redis form from a clock, as `XADD … *` does. */
export class IdGenerator {
  private lastMs = 0;
  private seq = 0;

  constructor(private readonly now: () => number = Date.now) {}

  next(): string {
    const ms = this.now();
    if (ms > this.lastMs) {
      this.lastMs = ms;
      this.seq = 0;
    } else {
      this.seq++;
    }
    return `${this.lastMs}-${this.seq}`;
  }
}

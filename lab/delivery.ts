/**
 * What one member received, judged against what it should have: the ids of a room's messages in
 * the order they arrived, against the ids the senders were acknowledged (or the room's history).
 * Pure functions, shared by the client runner and the tests.
 */
import { compareIds } from "../src/chat/ids.js";

export interface DeliveryCheck {
  /** Messages received, history and live, counting repeats. */
  received: number;
  /** Received more than once (each repeat counts). */
  duplicates: number;
  /** Received for the first time after a message with a higher id: out of the room's order. */
  outOfOrder: number;
  /** Expected and never received (0 when nothing was expected). */
  missing: number;
  /** Received, within the span of the expected ids, but not expected (0 when nothing was expected). */
  unexpected: number;
  /** The first few missing ids, to name in a failure. */
  missingIds: string[];
}

/**
 * Judges `received` (in arrival order). With `expected`, also what is missing and what should not
 * be there; ids outside the span of `expected` (older history, later messages) are not judged.
 */
export function checkDelivery(received: readonly string[], expected?: readonly string[]): DeliveryCheck {
  const seen = new Set<string>();
  let duplicates = 0;
  let outOfOrder = 0;
  let highest: string | undefined;
  for (const id of received) {
    if (seen.has(id)) {
      duplicates++;
      continue;
    }
    seen.add(id);
    if (highest !== undefined && compareIds(id, highest) < 0) outOfOrder++;
    else highest = id;
  }
  const check: DeliveryCheck = { received: received.length, duplicates, outOfOrder, missing: 0, unexpected: 0, missingIds: [] };
  if (expected === undefined || expected.length === 0) return check;
  const wanted = new Set(expected);
  let low = expected[0]!;
  let high = expected[0]!;
  for (const id of expected) {
    if (compareIds(id, low) < 0) low = id;
    if (compareIds(id, high) > 0) high = id;
    if (!seen.has(id)) {
      check.missing++;
      if (check.missingIds.length < 5) check.missingIds.push(id);
    }
  }
  for (const id of seen) {
    if (!wanted.has(id) && compareIds(id, low) >= 0 && compareIds(id, high) <= 0) check.unexpected++;
  }
  return check;
}

/** True when every expected message arrived once, in order, and nothing else in their span. */
export function deliveredOnceInOrder(check: DeliveryCheck): boolean {
  return check.duplicates === 0 && check.outOfOrder === 0 && check.missing === 0 && check.unexpected === 0;
}

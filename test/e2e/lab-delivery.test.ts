/**
 * The lab's delivery check (lab/delivery.ts), which the client runner reports with: what counts as
 * a duplicate, out of order, missing or unexpected. Needs no namespaces: runs everywhere.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkDelivery, deliveredOnceInOrder } from "../../lab/delivery.js";

describe("the lab's delivery check", () => {
  const expected = ["100-0", "100-1", "101-0", "205-3"];

  it("passes every expected message once, in order, with older history before them", () => {
    const check = checkDelivery(["99-7", ...expected], expected);
    assert.deepEqual(check, { received: 5, duplicates: 0, outOfOrder: 0, missing: 0, unexpected: 0, missingIds: [] });
    assert.ok(deliveredOnceInOrder(check));
  });

  it("counts repeats, messages behind a higher id, and what is missing or should not be there", () => {
    const check = checkDelivery(["100-0", "101-0", "100-1", "100-1", "150-0"], expected);
    assert.deepEqual(check, { received: 5, duplicates: 1, outOfOrder: 1, missing: 1, unexpected: 1, missingIds: ["205-3"] });
    assert.ok(!deliveredOnceInOrder(check));
  });

  it("compares ids by number, not as text", () => {
    // "9-0" < "10-0" as ids, though not as strings
    assert.equal(checkDelivery(["9-0", "10-0", "10-2", "10-10"]).outOfOrder, 0);
    assert.equal(checkDelivery(["10-0", "9-0"]).outOfOrder, 1);
  });

  it("without expected ids, judges only repeats and order", () => {
    assert.deepEqual(checkDelivery(["1-0", "1-0", "2-0"]), { received: 3, duplicates: 1, outOfOrder: 0, missing: 0, unexpected: 0, missingIds: [] });
  });
});

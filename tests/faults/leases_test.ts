// The kept-alive check on hand-made lease records: a lease is alive until the last answered keep-alive's send time +
// TTL; "gone" answered, or its key read gone, before then fails; a keep-alive held up past that time may find it gone.
import { deepStrictEqual as assertEquals, equal, match } from "node:assert/strict";
import { checkKeptAlive, LEASE_TTL_S, type LeaseRecord } from "./leases.ts";

const TTL = LEASE_TTL_S * 1000;
const lease = (rounds: LeaseRecord["rounds"]): LeaseRecord => ({ id: "7", key: "lease/0.0", granted: 0, rounds });
const here = (exists: boolean, at: number) => ({ call: at, ret: at + 5, exists });

Deno.test("lease checks: keep-alives answered, then the lease let go and found gone after its TTL, passes", () => {
  assertEquals(
    checkKeptAlive([lease([
      { sent: 1000, answered: 1010, ttl: 4, read: here(true, 1020) },
      { sent: 2000, answered: 2010, ttl: 4, read: here(true, 2020) },
      { sent: 2000 + TTL + 1, answered: 2000 + TTL + 10, ttl: 0 },
    ])]),
    [],
  );
});

Deno.test("lease checks: a keep-alive sent in time but held up past the expiry may find the lease gone", () => {
  // sent 770 ms before the lease could expire, answered (by the leader, after the expiry) 1.8 s later: as seed 116
  // found with a keep-alive forwarded by a member partitioned meanwhile
  assertEquals(
    checkKeptAlive([lease([
      { sent: 1000, answered: 1010, ttl: 4 },
      { sent: 1000 + TTL - 770, answered: 1000 + TTL + 1800, ttl: 0 },
    ])]),
    [],
  );
});

Deno.test("lease checks: gone answered, or the key read gone, while keep-alives hold the lease fails", () => {
  const early = checkKeptAlive([lease([
    { sent: 1000, answered: 1010, ttl: 4 },
    { sent: 2000, answered: 2010, ttl: 0 },
  ])]);
  equal(early.length, 1);
  match(early[0], /lease 7: a keep-alive answered 2990 ms before the lease could expire that it is gone/);
  // alive from the grant on, before any keep-alive
  equal(checkKeptAlive([lease([{ sent: 500, answered: TTL - 1, ttl: 0 }])]).length, 1);
  const read = checkKeptAlive([lease([{ sent: 1000, answered: 1010, ttl: 4, read: here(false, 3000) }])]);
  equal(read.length, 1);
  match(read[0], /its key lease\/0\.0 was gone 1995 ms before the lease could expire/);
});

// The lessor on a real backend and store, with a clock the test moves.
import { Backend } from "../../mvcc/backend.ts";
import { KVStore } from "../../mvcc/kvstore.ts";
import {
  type Checkpoint,
  LEASE_REVOKE_RATE,
  Lessor,
  type LessorOptions,
  NotPrimaryError,
} from "../../server/lease/lessor.ts";
import { LeaseQueue } from "../../server/lease/lease_queue.ts";
import { ErrGRPCLeaseExist, ErrGRPCLeaseNotFound, ErrGRPCLeaseTTLTooLarge } from "../../server/apply_errors.ts";
import { assert, assertEquals, assertRejects, assertThrows, b, s, tempDir } from "../mvcc/helpers.ts";

async function open(dir: string, clock: { t: number }, opts: Partial<LessorOptions> = {}) {
  const backend = await Backend.openDataDir(dir);
  const lessor = new Lessor(backend, { minTTL: 2, now: () => clock.t, ...opts });
  const store = KVStore.open(backend, { lessor });
  return {
    backend,
    lessor,
    store,
    close: async () => {
      await store.close();
      await backend.close();
    },
  };
}

/** Revokes through the store, as the applier does: the keys go in one write transaction. */
function revoke(lessor: Lessor, store: KVStore, id: bigint): void {
  lessor.revoke(id, (keys) => {
    const t = store.write();
    for (const k of keys) t.deleteRange(k);
    t.end();
  });
}

Deno.test("lessor: grant's errors and minimum TTL; keys attach, move and detach with the store's writes", async () => {
  const clock = { t: 1000 };
  const { lessor, store, close } = await open(await tempDir(), clock);
  try {
    assertThrows(() => lessor.grant(0n, 10), (e) => e === ErrGRPCLeaseNotFound);
    assertThrows(() => lessor.grant(1n, 9_000_000_001), (e) => e === ErrGRPCLeaseTTLTooLarge);
    assertEquals(lessor.grant(1n, 1).ttl, 2);
    assertThrows(() => lessor.grant(1n, 10), (e) => e === ErrGRPCLeaseExist);
    lessor.grant(2n, 10);
    store.put(b("k1"), b("v"), 1n);
    store.put(b("k2"), b("v"), 1n);
    store.put(b("k3"), b("v"), 2n);
    store.put(b("k2"), b("v"), 2n); // moves
    store.put(b("k3"), b("v")); // detaches
    assertEquals(lessor.lookup(1n)!.sortedKeys().map(s), ["k1"]);
    assertEquals(lessor.lookup(2n)!.sortedKeys().map(s), ["k2"]);
    store.deleteRange(b("k1"));
    assertEquals(lessor.lookup(1n)!.sortedKeys(), []);
    // a revocation deletes every attached key in one revision
    store.put(b("k0"), b("v"), 2n);
    const rev = store.rev;
    revoke(lessor, store, 2n);
    assertEquals(store.rev, rev + 1);
    assertEquals(store.range(b("k"), b("l")).kvs.map((kv) => s(kv.key)), ["k3"]);
    assertEquals(lessor.lookup(2n), undefined);
    assertThrows(() => revoke(lessor, store, 2n), (e) => e === ErrGRPCLeaseNotFound);
  } finally {
    await close();
  }
});

Deno.test("lessor: only the primary counts down; expired leases are found in bounded batches and retried", async () => {
  const clock = { t: 0 };
  const { lessor, close } = await open(await tempDir(), clock);
  try {
    lessor.grant(1n, 5);
    assertEquals(lessor.remainingMs(lessor.lookup(1n)!), Infinity);
    await assertRejects(() => lessor.renew(1n), (e) => e instanceof NotPrimaryError);
    lessor.promote(1000);
    assertEquals(lessor.remainingMs(lessor.lookup(1n)!), 6000);
    lessor.grant(2n, 3);
    clock.t = 2000;
    assertEquals(await lessor.renew(1n), 5); // now expires at 7000
    await assertRejects(() => lessor.renew(9n), (e) => e === ErrGRPCLeaseNotFound);
    clock.t = 3000;
    assertEquals(lessor.findExpired(10).map((l) => l.id), [2n]);
    assertEquals(lessor.findExpired(10), [], "not again before the retry interval");
    clock.t = 6100;
    assertEquals(lessor.findExpired(10).map((l) => l.id), [2n], "retried: its revocation was lost");
    clock.t = 7000;
    assertEquals(lessor.findExpired(10).map((l) => l.id), [1n]);
    // a renewal of an expired lease waits for its revocation and fails as lease-not-found
    const renewal = lessor.renew(1n);
    lessor.revoke(1n, () => {});
    await assertRejects(() => renewal, (e) => e === ErrGRPCLeaseNotFound);
    // demoted: nothing expires, waiting renewals fail as not-primary
    const waiting = lessor.renew(2n);
    lessor.demote();
    await assertRejects(() => waiting, (e) => e instanceof NotPrimaryError);
    clock.t = 1e9;
    assertEquals(lessor.findExpired(10), []);
    for (let i = 0; i < 30; i++) lessor.grant(100n + BigInt(i), 5);
    lessor.promote(0);
    assertEquals(lessor.findExpired(10).length, 0);
    clock.t += 5000;
    assertEquals(lessor.findExpired(10).length, 10, "bounded by the limit");
    assertEquals(lessor.findExpired(100).length, 21, "the rest, and lease 2");
  } finally {
    await close();
  }
});

Deno.test("lessor: promoting spreads a pile of leases expiring together to 3/4 of the revoke rate per second", async () => {
  const clock = { t: 0 };
  const { lessor, close } = await open(await tempDir(), clock);
  try {
    const n = 3 * LEASE_REVOKE_RATE;
    for (let i = 1; i <= n; i++) lessor.grant(BigInt(i), 10);
    lessor.promote(0);
    const perSecond = new Map<number, number>();
    for (const l of lessor.leases()) {
      const sec = Math.floor(lessor.remainingMs(l) / 1000);
      perSecond.set(sec, (perSecond.get(sec) ?? 0) + 1);
    }
    for (const [sec, count] of perSecond) assert(count <= (3 * LEASE_REVOKE_RATE) / 4 + 1, `${count} in second ${sec}`);
    assertEquals([...perSecond.values()].reduce((a, c) => a + c, 0), n);
  } finally {
    await close();
  }
});

Deno.test("lessor: leases, checkpoints and attached keys come back from the backend, also after a defrag", async () => {
  const dir = await tempDir();
  const clock = { t: 0 };
  let o = await open(dir, clock);
  const big = 0x694d_7a1b_2c3d_4e5fn;
  o.lessor.grant(big, 60);
  o.lessor.grant(7n, 30);
  o.lessor.checkpoint(7n, 12);
  o.store.put(b("a"), b("1"), big);
  o.store.put(b("b"), b("1"), 7n);
  revoke(o.lessor, o.store, 7n);
  // the lessor holds the bucket's content: a defrag rewrites it from the leases
  await o.backend.defrag();
  await o.close();
  o = await open(dir, clock);
  try {
    assertEquals(o.lessor.leases().map((l) => [l.id, l.ttl, l.remainingTTL, l.sortedKeys().map(s)]), [[big, 60, 0, [
      "a",
    ]]]);
    o.lessor.checkpoint(big, 20);
    o.lessor.promote(0);
    assertEquals(o.lessor.remainingMs(o.lessor.lookup(big)!), 20_000, "a checkpoint is what a new primary counts from");
  } finally {
    await o.close();
  }
});

Deno.test("lessor: checkpoints of long leases every interval; a new primary counts from them; a renewal clears them", async () => {
  const dir = await tempDir();
  const clock = { t: 0 };
  const proposed: Checkpoint[][] = [];
  const withCheckpoints = async (persist: boolean) => {
    const o = await open(dir, clock, { checkpointIntervalMs: 10_000, checkpointPersist: persist });
    // raft, as far as the lessor can tell: the proposal is applied, then resolves
    o.lessor.setCheckpointer((cps) => {
      proposed.push(cps);
      for (const c of cps) o.lessor.checkpoint(c.id, c.remainingTTL);
      return Promise.resolve();
    });
    return o;
  };
  let o = await withCheckpoints(false);
  try {
    const { lessor } = o;
    lessor.promote(0);
    lessor.grant(1n, 60);
    lessor.grant(2n, 8); // not longer than the interval: never checkpointed
    assertEquals(lessor.dueCheckpoints(100), []);
    clock.t = 10_500;
    assertEquals(lessor.dueCheckpoints(100), [{ id: 1n, remainingTTL: 50 }]);
    lessor.checkpoint(1n, 50);
    clock.t = 12_000;
    lessor.demote();
    lessor.promote(0);
    assertEquals(lessor.remainingMs(lessor.lookup(1n)!), 50_000, "the new primary counts from the checkpoint");
    assertEquals(await lessor.renew(1n), 60);
    assertEquals(proposed, [[{ id: 1n, remainingTTL: 0 }]], "the renewal cleared the checkpoint through raft");
    assertEquals(lessor.remainingMs(lessor.lookup(1n)!), 60_000);
    lessor.checkpoint(1n, 33);
  } finally {
    await o.close();
  }
  o = await withCheckpoints(true);
  try {
    assertEquals(
      o.lessor.lookup(1n)!.remainingTTL,
      0,
      "not persisted without --experimental-enable-lease-checkpoint-persist",
    );
    o.lessor.checkpoint(1n, 33);
  } finally {
    await o.close();
  }
  o = await withCheckpoints(true);
  try {
    assertEquals(o.lessor.lookup(1n)!.remainingTTL, 33, "persisted with it");
  } finally {
    await o.close();
  }
});

Deno.test("lease queue: pops in time order", () => {
  const q = new LeaseQueue();
  const times = Array.from({ length: 200 }, (_, i) => (i * 7919) % 211);
  times.forEach((t, i) => q.push({ time: t, id: BigInt(i) }));
  const out: number[] = [];
  while (q.length > 0) out.push(q.pop()!.time);
  assertEquals(out, [...times].sort((x, y) => x - y));
});

// The Ready loop's order for a follower: what it sends acknowledges only durable entries, and goes before the apply of
// entries committed earlier, unless a configuration change is among them (etcd's raftNode).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { RawNode } from "../../raft/rawnode.ts";
import { MemoryStorage } from "../../raft/storage.ts";
import { decodeConfChange, encodeConfChange } from "../../raft/confchange_codec.ts";
import { ConfChangeType, type Entry, EntryType, type Message, MessageType } from "../../raft/types.ts";
import { newMessage } from "../../raft/util.ts";
import { WAL } from "../../wal/wal.ts";
import { Snapshotter } from "../../wal/snapshotter.ts";
import { RaftNode } from "../../server/raft_node.ts";
import { MetricsRegistry, ServerMetrics } from "../../server/metrics.ts";
import { nopLogger } from "../../server/logger.ts";

Deno.test("raft node: a follower acknowledges before it applies, past a configuration change after", async () => {
  const dir = await Deno.makeTempDir({ prefix: "detcd-test-raftnode-" });
  const events: string[] = [];
  let wal: WAL | undefined;
  try {
    wal = await WAL.create(`${dir}/wal`, new Uint8Array(0));
    const storage = new MemoryStorage();
    const rawNode = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage });
    rawNode.bootstrap([{ id: 1n }, { id: 2n }, { id: 3n }]);
    let settled: () => void = () => {};
    const node = new RaftNode(
      rawNode,
      storage,
      wal,
      new Snapshotter(`${dir}/snap`),
      100,
      {
        apply: (entries) => {
          events.push(`apply ${entries.map((e) => e.index).join(",")}`);
          for (const e of entries) {
            if (e.type === EntryType.ConfChange) rawNode.applyConfChange(decodeConfChange(e.data));
          }
        },
        leaderChanged: () => {},
        readStates: () => {},
        send: (msgs) => events.push(`send ${msgs.map((m) => `${MessageType[m.type]}@${m.index}`).join(",")}`),
        fatal: (err) => events.push(`fatal ${err}`),
        advanced: () => settled(),
      },
      nopLogger(),
      new ServerMetrics(new MetricsRegistry()),
    );
    const step = async (m?: Message) => {
      const done = new Promise<void>((r) => settled = r);
      if (m !== undefined) rawNode.step(m);
      node.kick();
      await done;
    };
    await step(); // the bootstrap's three member additions, applied
    events.length = 0;
    const app = (index: number, entries: Entry[]): Message => ({
      ...newMessage(MessageType.MsgApp, 1n, 2n),
      term: 1,
      logTerm: 1,
      index,
      entries,
      commit: index + entries.length,
    });
    await step(app(3, [{ term: 1, index: 4, type: EntryType.Normal, data: Uint8Array.of(1) }]));
    assertEquals(events, ["send MsgAppResp@4", "apply 4"]);
    events.length = 0;
    const remove3 = encodeConfChange({ id: 0n, type: ConfChangeType.RemoveNode, nodeId: 3n });
    await step(app(4, [{ term: 1, index: 5, type: EntryType.ConfChange, data: remove3 }]));
    assertEquals(events, ["apply 5", "send MsgAppResp@5"]);
    await node.stop();
  } finally {
    await wal?.close();
    await Deno.remove(dir, { recursive: true });
  }
});

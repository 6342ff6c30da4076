// The membership in a raft snapshot's data, as etcd 3.4's v2 store JSON: what detcd writes reads back whole, and
// what etcd wrote (a snapshot file of Debian's etcd 3.4.23, its learner and its version) reads as etcd means it.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { RaftCluster } from "../../server/membership.ts";

Deno.test("membership snapshot: detcd's data is etcd's v2 store, and reads back every member, removal and version", () => {
  const c = new RaftCluster(0xe033b05a4e68180an, 1n);
  c.add({
    id: 1n,
    name: "m1",
    peerUrls: ["http://127.0.0.1:2380"],
    clientUrls: ["http://127.0.0.1:2379"],
    isLearner: false,
  });
  c.add({ id: 0xfedcba9876543210n, name: "", peerUrls: ["http://127.0.0.1:2480"], clientUrls: [], isLearner: true });
  c.remove(0x2an);
  c.version = "3.4.0";
  const data = c.snapshotData();
  const store = JSON.parse(new TextDecoder().decode(data));
  const zero = store.Root.Children["0"].Children;
  assertEquals(
    zero.members.Children["1"].Children.attributes.Value,
    '{"name":"m1","clientURLs":["http://127.0.0.1:2379"]}',
  );
  assertEquals(
    zero.members.Children.fedcba9876543210.Children.raftAttributes.Value,
    '{"peerURLs":["http://127.0.0.1:2480"],"isLearner":true}',
  );
  assertEquals(zero.members.Children.fedcba9876543210.Children.attributes, undefined); // never published
  assertEquals(zero.removed_members.Children["2a"].Children, null); // a value, not a directory
  assertEquals(zero.version.Value, "3.4.0");

  const back = RaftCluster.fromJSON(1n, RaftCluster.parseSnapshotData(data, c.clusterId));
  assertEquals(back.list(), c.list());
  assertEquals([...back.removed], [0x2an]);
  assertEquals([back.version, back.clusterId], ["3.4.0", c.clusterId]);
});

/** The membership part of a Debian etcd 3.4.23 snapshot file: a member that published, a learner that did not. */
const ETCD_STORE = JSON.stringify({
  Root: {
    Path: "/",
    Children: {
      "0": {
        Path: "/0",
        Children: {
          members: {
            Path: "/0/members",
            Children: {
              "20ab1b36ed3a0936": {
                Path: "/0/members/20ab1b36ed3a0936",
                Children: {
                  raftAttributes: {
                    Path: "/0/members/20ab1b36ed3a0936/raftAttributes",
                    Value: '{"peerURLs":["http://127.0.0.1:23999"],"isLearner":true}',
                    Children: null,
                  },
                },
              },
              "38c12c72c338faf9": {
                Path: "/0/members/38c12c72c338faf9",
                Children: {
                  attributes: {
                    Path: "/0/members/38c12c72c338faf9/attributes",
                    Value: '{"name":"default","clientURLs":["http://127.0.0.1:23797"]}',
                    Children: null,
                  },
                  raftAttributes: {
                    Path: "/0/members/38c12c72c338faf9/raftAttributes",
                    Value: '{"peerURLs":["http://127.0.0.1:23807"]}',
                    Children: null,
                  },
                },
              },
            },
          },
          version: { Path: "/0/version", Value: "3.4.0", Children: null },
        },
      },
      "1": { Path: "/1", Children: {} },
    },
  },
  WatcherHub: { EventHistory: null },
});

Deno.test("membership snapshot: etcd's own v2 store reads as its members, learner and version", () => {
  const c = RaftCluster.fromJSON(7n, RaftCluster.parseSnapshotData(new TextEncoder().encode(ETCD_STORE), 9n));
  assertEquals(c.list(), [
    { id: 0x20ab1b36ed3a0936n, name: "", peerUrls: ["http://127.0.0.1:23999"], clientUrls: [], isLearner: true },
    {
      id: 0x38c12c72c338faf9n,
      name: "default",
      peerUrls: ["http://127.0.0.1:23807"],
      clientUrls: ["http://127.0.0.1:23797"],
      isLearner: false,
    },
  ]);
  assertEquals([c.version, c.clusterId, c.removed.size], ["3.4.0", 9n, 0]);
});

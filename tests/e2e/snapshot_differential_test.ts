// Differential backups: the same history on Debian's etcd 3.4 and on detcd, `etcdctl snapshot save` from each,
// `snapshot status` of each file, `snapshot restore` of each into a data dir, and Debian's etcd started on each restored
// dir serves the same keys, revisions, leases and HashKV: a detcd backup is an etcd backup.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ctl, etcdctl, freePort, startMember, tempDir, waitUntil } from "./harness.ts";
import { dataAnswers, opts, post, startReferenceMember, withBoth } from "./reference.ts";

/** The same writes on each server: overwrites, a delete, a leased key (a lease of the same ID), a compaction. */
async function history(ep: string): Promise<void> {
  const granted = await post(ep, "/v3/lease/grant", JSON.stringify({ TTL: 600, ID: 4660 }));
  assertEquals(granted.status, 200, JSON.stringify(granted));
  for (let i = 0; i < 150; i++) await ctl(ep, "put", `k${i % 60}`, `v${i}`);
  await ctl(ep, "del", "k1", "k9");
  await ctl(ep, "put", "--lease=1234", "leased", "x");
  await ctl(ep, "put", "big", "b".repeat(20_000)); // a value over four pages
  await ctl(ep, "compact", "100");
  await ctl(ep, "put", "last", "1");
}

/**
 * Debian's etcd, or detcd, on a data dir restored from `file` (with the IDs the reference's member has); stop when
 * done.
 */
async function restored(file: string, server: "etcd" | "detcd" = "etcd") {
  const dir = `${await tempDir()}/restored.etcd`;
  const restored = await etcdctl("127.0.0.1:1", [
    "snapshot",
    "restore",
    file,
    `--data-dir=${dir}`,
    "--name=m1",
    "--initial-cluster=m1=http://localhost:2380",
    "--initial-advertise-peer-urls=http://localhost:2380",
  ]);
  assertEquals(restored.code, 0, restored.stderr);
  const client = await freePort();
  const endpoint = `127.0.0.1:${client}`;
  const flags = [
    "--name=m1",
    `--data-dir=${dir}`,
    `--listen-client-urls=http://${endpoint}`,
    `--advertise-client-urls=http://${endpoint}`,
    `--listen-peer-urls=http://127.0.0.1:${await freePort()}`,
  ];
  if (server === "detcd") {
    const member = await startMember({ args: flags, dataDir: dir });
    return { endpoint, stop: async () => void await member.stop() };
  }
  const stop = startReferenceMember(flags);
  await waitUntil(async () => (await etcdctl(endpoint, ["get", "last"])).code === 0, () => `etcd on ${dir} to serve`);
  return { endpoint, stop };
}

Deno.test({
  name:
    "differential snapshot: save from each, status, restore, and etcd and detcd on each restored dir answer the same",
  ...opts,
  fn: () =>
    withBoth(async (ref, mine) => {
      const dir = await tempDir();
      const answers = [];
      for (const [name, ep] of [["ref", ref], ["mine", mine]]) {
        await history(ep);
        const file = `${dir}/${name}.db`;
        const saved = await etcdctl(ep, ["snapshot", "save", file]);
        assertEquals([saved.code, saved.stdout], [0, `Snapshot saved at ${file}\n`], saved.stderr);
        const status = JSON.parse(await ctl("127.0.0.1:1", "snapshot", "status", "-w", "json", file));
        const hashkv = JSON.parse(await ctl(ep, "endpoint", "hashkv", "-w", "json"))[0];
        for (const on of ["etcd", "detcd"] as const) {
          const server = await restored(file, on);
          try {
            answers.push({ revision: status.revision, contents: await dataAnswers(server.endpoint, 99) });
            // the restored history hashes as the server it was saved from
            const hash = JSON.parse(await ctl(server.endpoint, "endpoint", "hashkv", "-w", "json"))[0];
            assertEquals(hash.HashKV.hash, hashkv.HashKV.hash, `${name}'s backup on ${on}`);
          } finally {
            await server.stop();
          }
        }
      }
      for (const a of answers.slice(1)) assertEquals(a, answers[0]);
      assertEquals(answers[0].revision, 3 + 150 + 4); // the reference's probe put and delete, then the history
    }),
});

Deno.test({
  name: "snapshot: saves from a fresh member and from one under a write load are whole files etcd restores",
  ...opts,
  fn: async () => {
    const member = await startMember();
    const dir = await tempDir();
    try {
      await ctl(member.endpoint, "snapshot", "save", `${dir}/fresh.db`);
      const fresh = await ctl("127.0.0.1:1", "snapshot", "status", "-w", "json", `${dir}/fresh.db`);
      assertEquals(JSON.parse(fresh).revision, 0); // as etcd's status says of a fresh member: no key written
      // puts in flight while the snapshots stream: each file is whole (bbolt's check passes) and restores
      let stop = false;
      const load = (async () => {
        for (let i = 0; !stop; i++) await ctl(member.endpoint, "put", `load${i % 50}`, "x".repeat(1000));
      })();
      for (let i = 0; i < 3; i++) {
        await ctl(member.endpoint, "snapshot", "save", `${dir}/busy${i}.db`);
        const status = await ctl("127.0.0.1:1", "snapshot", "status", "-w", "json", `${dir}/busy${i}.db`);
        assertEquals(JSON.parse(status).totalSize % 4096, 0);
      }
      stop = true;
      await load;
      await ctl(member.endpoint, "put", "last", "1");
      await ctl(member.endpoint, "snapshot", "save", `${dir}/after.db`);
      const server = await restored(`${dir}/after.db`);
      try {
        assertEquals(await ctl(server.endpoint, "get", "load0", "--print-value-only"), `${"x".repeat(1000)}\n`);
      } finally {
        await server.stop();
      }
    } finally {
      await member.stop();
    }
  },
});

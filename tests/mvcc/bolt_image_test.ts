// bbolt files built by BoltImage, opened by the real bbolt inside etcdctl 3.4: `snapshot status` (tx.Check, then a
// hash of every bucket's name, keys and values) and `snapshot restore` (etcd's mvcc store rebuilt from the file).
import { createHash } from "node:crypto";
import { arrayBucket, BoltImage } from "../../mvcc/bolt_image.ts";

/** A bucket's entries as buffers. */
interface Entries {
  name: Uint8Array;
  keys: Uint8Array[];
  values: Uint8Array[];
}

const boltImage = (buckets: Entries[]) => new BoltImage(buckets.map((x) => arrayBucket(x.name, x.keys, x.values)));
import { BOLT_PAGE_SIZE } from "../../mvcc/bolt_format.ts";
import { encodeKeyValue, newKeyValue } from "../../mvcc/kv_codec.ts";
import { revToBytes, uint64ToBytes } from "../../mvcc/revision.ts";
import { crc32cUpdate } from "../../wal/crc32c.ts";
import { etcdctl, noEtcdctl } from "../e2e/harness.ts";
import { assert, assertEquals, assertThrows, b, tempDir } from "./helpers.ts";

async function writeImage(path: string, image: BoltImage, withSha = false): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const sha = createHash("sha256");
  let size = 0;
  for (const chunk of image.chunks()) {
    assertEquals(chunk.length % BOLT_PAGE_SIZE, 0);
    sha.update(chunk);
    size += chunk.length;
    await f.write(chunk);
  }
  if (withSha) await f.write(sha.digest());
  f.close();
  assertEquals(size, image.size);
}

/** What `snapshot status` must say: etcd's hash over names, keys, values; the last key's revision; the key count. */
function expected(buckets: Entries[], size: number) {
  let hash = 0, revision = 0, totalKey = 0;
  for (const bucket of buckets) {
    hash = crc32cUpdate(hash, bucket.name);
    bucket.keys.forEach((k, i) => {
      hash = crc32cUpdate(hash, k);
      hash = crc32cUpdate(hash, bucket.values[i]);
      if (new TextDecoder().decode(bucket.name) === "key") revision = Number(new DataView(k.buffer).getBigUint64(0));
      totalKey++;
    });
  }
  return { hash, revision, totalKey, totalSize: size };
}

/** Pages from a bucket's root down its first children to a leaf, read from the file as bbolt would. */
async function depth(path: string, bucket: string): Promise<number> {
  const file = await Deno.readFile(path);
  const page = (id: number) => new DataView(file.buffer, id * BOLT_PAGE_SIZE);
  const rootBucket = Number(page(0).getBigUint64(16 + 16, true));
  const root = page(rootBucket);
  let id = -1;
  for (let i = 0; i < root.getUint16(10, true); i++) {
    const at = 16 + 16 * i, pos = root.getUint32(at + 4, true), ksize = root.getUint32(at + 8, true);
    const name = new TextDecoder().decode(file.subarray(rootBucket * BOLT_PAGE_SIZE + at + pos).subarray(0, ksize));
    if (name === bucket) id = Number(root.getBigUint64(at + pos + ksize, true));
  }
  let levels = 1;
  for (let p = page(id); p.getUint16(8, true) === 0x01; p = page(Number(p.getBigUint64(16 + 8, true)))) levels++;
  return levels;
}

async function status(path: string) {
  const r = await etcdctl("127.0.0.1:1", ["snapshot", "status", "-w", "json", path]);
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** etcd's buckets with `n` puts in "key" (values of varied sizes, some spanning pages) and an empty "lease". */
function etcdBuckets(n: number): Entries[] {
  const key: Entries = { name: b("key"), keys: [], values: [] };
  for (let rev = 2; rev < n + 2; rev++) {
    const size = rev % 997 === 0 ? 3 * BOLT_PAGE_SIZE + rev : rev % 7 === 0 ? 200 : 20;
    const value = new Uint8Array(size).fill(rev % 251);
    key.keys.push(revToBytes(rev, 0));
    key.values.push(encodeKeyValue(newKeyValue(b(`k${rev % 5000}`), value, BigInt(rev), BigInt(rev), 1n, 0n)));
  }
  const meta: Entries = {
    name: b("meta"),
    keys: [b("consistent_index"), b("finishedCompactRev")],
    values: [uint64ToBytes(n + 7), revToBytes(1, 0)],
  };
  const empty = (name: string): Entries => ({ name: b(name), keys: [], values: [] });
  return [empty("alarm"), key, empty("lease"), meta];
}

Deno.test({
  name: "bolt image: bbolt checks and hashes a file of one leaf, of branches three levels deep, of overflow pages",
  ignore: noEtcdctl,
  fn: async () => {
    const dir = await tempDir();
    for (const n of [3, 500, 20_000]) {
      const buckets = etcdBuckets(n);
      const image = boltImage(buckets);
      await writeImage(`${dir}/${n}.db`, image);
      assertEquals(await status(`${dir}/${n}.db`), expected(buckets, image.size), `${n} puts`);
    }
    // 20k puts of ~60 bytes: ~64 to a leaf, ~120 leaves to a branch: a root above two levels of branches
    assertEquals(await depth(`${dir}/20000.db`, "key"), 3);
    assertEquals(await depth(`${dir}/500.db`, "key"), 2);
    assertEquals(await depth(`${dir}/3.db`, "key"), 1);
  },
});

Deno.test({
  name: "bolt image: no buckets at all, and one of only empty buckets, are valid files",
  ignore: noEtcdctl,
  fn: async () => {
    const dir = await tempDir();
    for (const buckets of [[], [{ name: b("lease"), keys: [], values: [] }]]) {
      const image = boltImage(buckets);
      assertEquals(image.size, 4 * BOLT_PAGE_SIZE);
      await writeImage(`${dir}/empty.db`, image);
      assertEquals(await status(`${dir}/empty.db`), expected(buckets, image.size));
    }
  },
});

Deno.test({
  name: "bolt image: etcdctl restores a data dir from it, with its sha256 appended as Maintenance.Snapshot sends it",
  ignore: noEtcdctl,
  fn: async () => {
    const dir = await tempDir();
    const buckets = etcdBuckets(2000);
    await writeImage(`${dir}/snap.db`, boltImage(buckets), true);
    const r = await etcdctl("127.0.0.1:1", ["snapshot", "restore", `${dir}/snap.db`, `--data-dir=${dir}/restored`]);
    assertEquals(r.code, 0, r.stderr);
    assert(Deno.statSync(`${dir}/restored/member/snap/db`).size > 2000 * 20);
    // a damaged byte: the appended sha256 no longer matches, and restore refuses it
    const bytes = await Deno.readFile(`${dir}/snap.db`);
    bytes[5 * BOLT_PAGE_SIZE + 100] ^= 1;
    await Deno.writeFile(`${dir}/bad.db`, bytes);
    const bad = await etcdctl("127.0.0.1:1", ["snapshot", "restore", `${dir}/bad.db`, `--data-dir=${dir}/bad`]);
    assertEquals(bad.code !== 0 && /expected sha256/.test(bad.stderr), true, bad.stderr);
  },
});

Deno.test("bolt image: buckets or keys out of order are refused before anything is written", () => {
  const kv = (keys: string[]): Entries => ({ name: b("key"), keys: keys.map(b), values: keys.map(b) });
  assertThrows(() => boltImage([kv(["b", "a"])]), (e) => /keys out of order/.test(String(e)));
  assertThrows(() => boltImage([kv(["a", "a"])]), (e) => /keys out of order or repeated/.test(String(e)));
  assertThrows(() => boltImage([kv([]), kv([])]), (e) => /buckets out of order/.test(String(e)));
});

Deno.test("bolt image: its pieces of any size are the pages' bytes in order", () => {
  const image = boltImage(etcdBuckets(3000));
  const whole = new Uint8Array(image.size);
  let at = 0;
  for (const page of image.chunks()) {
    whole.set(page, at);
    at += page.length;
  }
  for (const size of [32 * 1024, 1024 * 1024, 5000]) {
    const pieces = [...image.pieces(size)];
    assert(pieces.slice(0, -1).every((p) => p.length === size), `${size}`);
    assertEquals(Uint8Array.from(pieces.flatMap((p) => [...p])), whole);
  }
});

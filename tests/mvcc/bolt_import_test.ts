// etcd's bbolt backend read without bbolt and rewritten as detcd's backend on open: files BoltImage wrote, and files
// the real bbolt wrote (inside `etcdctl snapshot restore`, which opens the file and commits to it).
import { arrayBucket, BoltImage } from "../../mvcc/bolt_image.ts";

/** A bucket's entries as buffers. */
interface Entries {
  name: Uint8Array;
  keys: Uint8Array[];
  values: Uint8Array[];
}

const boltImage = (buckets: Entries[]) => new BoltImage(buckets.map((x) => arrayBucket(x.name, x.keys, x.values)));
import { BOLT_PAGE_SIZE } from "../../mvcc/bolt_format.ts";
import { BoltFormatError, readBolt } from "../../mvcc/bolt_reader.ts";
import { type BoltImport, importBolt } from "../../mvcc/bolt_import.ts";
import { Backend } from "../../mvcc/backend.ts";
import { MAGIC } from "../../mvcc/backend_log.ts";
import { revToBytes } from "../../mvcc/revision.ts";
import { encodeKeyValue, newKeyValue } from "../../mvcc/kv_codec.ts";
import { etcdctl, noEtcdctl } from "../e2e/harness.ts";
import { assert, assertEquals, assertRejects, b, s, tempDir } from "./helpers.ts";

async function write(path: string, buckets: Entries[]): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  for (const chunk of boltImage(buckets).chunks()) await f.write(chunk);
  f.close();
}

/** etcd's buckets, of sizes that make one leaf, branches, overflow pages and an inline (empty) bucket. */
function buckets(): Entries[] {
  const big: Entries = { name: b("key"), keys: [], values: [] };
  for (let i = 1; i <= 9000; i++) {
    big.keys.push(revToBytes(i, 0));
    const value = new Uint8Array(i % 1000 === 0 ? 3 * BOLT_PAGE_SIZE : 1 + (i % 50)).fill(i % 256);
    big.values.push(encodeKeyValue(newKeyValue(b(`k${i % 3000}`), value, BigInt(i), BigInt(i), 1n, 0n)));
  }
  return [
    { name: b("alarm"), keys: [], values: [] },
    big,
    { name: b("meta"), keys: [b("consistent_index")], values: [new Uint8Array(8).fill(7)] },
  ];
}

/** Every bucket's entries, as text, from a bbolt file read by readBolt. */
function readAll(file: Uint8Array): string[] {
  const out: string[] = [];
  readBolt(file, (name) => out.push(`bucket ${s(name)}`), (k, v) => out.push(`${[...k]}=${v.length}:${v[0]}`));
  return out;
}

function expectedOf(bs: Entries[]): string[] {
  return bs.flatMap((
    x,
  ) => [`bucket ${s(x.name)}`, ...x.keys.map((k, i) => `${[...k]}=${x.values[i].length}:${x.values[i][0]}`)]);
}

Deno.test("bolt reader: reads back every bucket and entry BoltImage wrote", async () => {
  const dir = await tempDir();
  const bs = buckets();
  await write(`${dir}/db`, bs);
  assertEquals(readAll(await Deno.readFile(`${dir}/db`)), expectedOf(bs));
});

Deno.test("bolt import: the backend opens a bbolt file as its log, with the same buckets and entries", async () => {
  const dir = await tempDir();
  const bs = buckets();
  await write(`${dir}/db`, bs);
  let told: BoltImport | undefined;
  const be = await Backend.open(`${dir}/db`, { onBoltImport: (i) => told = i });
  try {
    assertEquals(told?.buckets, 3);
    assertEquals(told?.keys, 9001);
    const got: string[] = [];
    for (const x of bs) {
      got.push(`bucket ${s(x.name)}`);
      be.forEach(s(x.name), (k, v) => void got.push(`${[...k]}=${v.length}:${v[0]}`));
    }
    assertEquals(got, expectedOf(bs));
  } finally {
    await be.close();
  }
  // the file is a log now: opened again, nothing is imported, the same entries are there
  const head = (await Deno.readFile(`${dir}/db`)).subarray(0, MAGIC.length);
  assertEquals([...head], [...MAGIC]);
  told = undefined;
  const again = await Backend.open(`${dir}/db`, { onBoltImport: (i) => told = i });
  assertEquals([told, again.count("key")], [undefined, 9000]);
  await again.close();
});

Deno.test({
  name: "bolt import: a file the real bbolt rewrote (etcdctl snapshot restore) reads the same",
  ignore: noEtcdctl,
  fn: async () => {
    const dir = await tempDir();
    const bs = buckets();
    await write(`${dir}/snap.db`, bs);
    const r = await etcdctl("127.0.0.1:1", [
      "snapshot",
      "restore",
      `${dir}/snap.db`,
      "--skip-hash-check",
      `--data-dir=${dir}/r`,
    ]);
    assertEquals(r.code, 0, r.stderr);
    // restore opened it with etcd's backend, whose lessor added the "lease" bucket: bbolt rewrote the file
    const text = readAll(await Deno.readFile(`${dir}/r/member/snap/db`));
    for (const line of expectedOf(bs.slice(1, 2))) assert(text.includes(line), line);
    assert(text.includes("bucket lease"), text.filter((t) => t.startsWith("bucket")).join(" "));
    const be = await Backend.open(`${dir}/r/member/snap/db`);
    assertEquals(be.count("key"), 9000);
    await be.close();
  },
});

Deno.test("bolt import: etcd's authentication enabled, a damaged file, or not bbolt: refused or left, untouched", async () => {
  const dir = await tempDir();
  await write(`${dir}/auth.db`, [{ name: b("auth"), keys: [b("authEnabled")], values: [new Uint8Array([1])] }]);
  const before = await Deno.readFile(`${dir}/auth.db`);
  await assertRejects(() => Backend.open(`${dir}/auth.db`), (e) => /authentication enabled/.test(String(e)));
  assertEquals(await Deno.readFile(`${dir}/auth.db`), before);
  // authentication disabled: imported
  await write(`${dir}/off.db`, [{ name: b("auth"), keys: [b("authEnabled")], values: [new Uint8Array([0])] }]);
  assert((await importBolt(`${dir}/off.db`)) !== undefined);

  // the last page (the meta bucket's leaf) overwritten: a header claiming 65535 elements
  await write(`${dir}/bad.db`, buckets());
  const bad = await Deno.readFile(`${dir}/bad.db`);
  bad.fill(0xff, bad.length - BOLT_PAGE_SIZE);
  await Deno.writeFile(`${dir}/bad.db`, bad);
  await assertRejects(() => importBolt(`${dir}/bad.db`), (e) => e instanceof BoltFormatError);
  assertEquals(await Deno.readFile(`${dir}/bad.db`), bad);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["auth.db", "bad.db", "off.db"]);

  assertEquals(await importBolt(`${dir}/missing.db`), undefined);
  await Deno.writeFile(`${dir}/text`, b("not a database"));
  assertEquals(await importBolt(`${dir}/text`), undefined);
});

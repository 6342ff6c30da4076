// The JSON-lines logger: zap production field layout, level filtering, child loggers and outputs.
import assert from "node:assert/strict";
import { createLogger, FatalLogError, memoryLogger, nopLogger } from "../../server/logger.ts";

Deno.test("lines are zap-shaped JSON: level, ts, caller, msg, then fields in order", () => {
  const log = memoryLogger("debug");
  log.info("ready to serve client requests", { address: "127.0.0.1:2379", n: 3, ok: true, big: 10n });
  assert.equal(log.lines.length, 1);
  const line = log.lines[0];
  assert.match(line, /^\{"level":"info","ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","caller":"test","msg":"ready/);
  assert.deepEqual(Object.keys(JSON.parse(line)), ["level", "ts", "caller", "msg", "address", "n", "ok", "big"]);
  assert.deepEqual(log.entries[0].big, 10);
});

Deno.test("errors log their message; odd values still give valid JSON", () => {
  const log = memoryLogger();
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  log.warn('quote " and newline\n', {
    error: new Error("disk full"),
    u: undefined,
    cyclic,
    url: new URL("http://a:1"),
  });
  const e = log.entries[0];
  assert.equal(e.msg, 'quote " and newline\n');
  assert.equal(e.error, "disk full");
  assert.equal(e.u, null);
  assert.equal(e.cyclic, "[object Object]");
  assert.equal(e.url, "http://a:1/");
});

Deno.test("levels below the logger's level are dropped", () => {
  const log = memoryLogger("warn");
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  assert.deepEqual(log.entries.map((e) => e.level), ["warn", "error"]);
  assert.equal(log.enabled("info"), false);
  assert.equal(log.enabled("error"), true);
});

Deno.test("child loggers set the caller and carry fixed fields", () => {
  const log = memoryLogger();
  const child = log.child("etcdserver", { "local-member-id": "8e9e05c52164694d" });
  child.info("starting", { term: 2 });
  assert.equal(log.entries[0].caller, "etcdserver");
  assert.equal(log.entries[0]["local-member-id"], "8e9e05c52164694d");
  assert.equal(log.entries[0].term, 2);
  assert.deepEqual(Object.keys(log.entries[0]).slice(4), ["local-member-id", "term"]);
});

Deno.test("panic throws and fatal throws FatalLogError in the test loggers", () => {
  const log = memoryLogger();
  assert.throws(() => log.panic("boom"), { message: "boom" });
  assert.throws(() => log.fatal("dead"), FatalLogError);
  assert.deepEqual(log.entries.map((e) => e.level), ["panic", "fatal"]);
  nopLogger().info("nothing happens");
});

Deno.test("createLogger appends to files listed in outputs", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/etcd.log`;
  Deno.writeTextFileSync(path, '{"old":1}\n');
  const log = createLogger("info", [path, path]);
  log.debug("hidden");
  log.info("one", { k: "v" });
  log.error("two");
  const lines = Deno.readTextFileSync(path).trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.msg), [undefined, "one", "two"], "appended once per line, duplicates merged");
  assert.equal(lines[1].caller, "etcdmain");
  assert.throws(() => createLogger("info", [`${dir}/missing/x.log`]));
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("createLogger writes to stdout and stderr", async () => {
  const code = `
    import { createLogger } from ${JSON.stringify(new URL("../../server/logger.ts", import.meta.url).href)};
    createLogger("info", ["stdout"]).info("to-stdout");
    createLogger("info", ["default"]).info("to-stderr");`;
  const out = await new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped", stderr: "piped" })
    .output();
  assert.equal(JSON.parse(new TextDecoder().decode(out.stdout)).msg, "to-stdout");
  assert.equal(JSON.parse(new TextDecoder().decode(out.stderr)).msg, "to-stderr");
});

// main.ts as a real process, for failures that happen before the server starts.
import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function oneLine(s: string): string {
  const lines = s.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${s}`);
  return lines[0];
}

Deno.test("an unknown flag exits 2 with Go's one-line message", async () => {
  const r = await run(["--bad-flag"]);
  assert.equal(r.code, 2);
  assert.equal(oneLine(r.stderr), "flag provided but not defined: -bad-flag");
  assert.equal(r.stdout, "");
});

Deno.test("a malformed value exits 2", async () => {
  const r = await run(["--listen-client-urls", "ftp://x:1"]);
  assert.equal(r.code, 2);
  assert.match(oneLine(r.stderr), /^invalid value "ftp:\/\/x:1" for flag -listen-client-urls: URL scheme must be/);
});

Deno.test("an invalid configuration exits 1 with one JSON log line", async () => {
  const cases: [string[], Record<string, string>, string][] = [
    [
      ["--election-timeout=100"],
      {},
      "--election-timeout[100ms] should be at least as 5 times as --heartbeat-interval[100ms]",
    ],
    [["--client-cert-auth"], {}, "--client-cert-auth is not supported: client certificate authentication"],
    [["--name=a"], { ETCD_NAME: "b" }, 'conflicting environment variable "ETCD_NAME" is shadowed'],
    [["--config-file=/nonexistent/etcd.yml"], {}, "/nonexistent/etcd.yml"],
  ];
  for (const [args, env, msg] of cases) {
    const r = await run(args, env);
    assert.equal(r.code, 1, args.join(" "));
    const entry = JSON.parse(oneLine(r.stderr));
    assert.equal(entry.level, "error");
    assert.equal(entry.msg, "failed to verify flags");
    assert.ok(entry.error.includes(msg), `${entry.error} should include ${msg}`);
  }
});

Deno.test("an unusable log output exits 1", async () => {
  const r = await run(["--log-outputs=/nonexistent/dir/etcd.log"]);
  assert.equal(r.code, 1);
  const entry = JSON.parse(oneLine(r.stderr));
  assert.equal(entry.msg, "failed to set up logging");
});

Deno.test("--version and --help print to stdout and exit 0", async () => {
  const v = await run(["--version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^detcd Version: .*\netcd Version: 3\.4\.\d+ \(compatible\)\n/);
  assert.equal(v.stderr, "");
  const h = await run(["--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^Usage:\n/);
  assert.match(h.stdout, /--data-dir '\$\{name\}\.etcd'/);
});

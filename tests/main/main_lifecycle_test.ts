// main.ts's lifecycle with server/embed.ts replaced through an import map: readiness and stop notifications to a real
// NOTIFY_SOCKET, signal handling and exit codes.
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);
const MAIN = new URL("main.ts", root).pathname;

/** deno.json plus a mapping of server/embed.ts onto the fake. */
function configWithFakeEmbed(): string {
  const cfg = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root)));
  cfg.imports[new URL("server/embed.ts", root).href] = new URL("tests/main/fake_embed.ts", root).href;
  const path = Deno.makeTempFileSync({ suffix: ".json" });
  Deno.writeTextFileSync(path, JSON.stringify(cfg));
  return path;
}

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + sys.argv[1][1:])
print("bound", flush=True)
s.settimeout(20)
while True:
    print(s.recv(4096).decode(), flush=True)
`;

class Lines {
  private buf = "";
  private reader: ReadableStreamDefaultReader<string>;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  /** Reads until a line satisfying `pred` arrives; returns it. */
  async until(pred: (line: string) => boolean): Promise<string> {
    for (;;) {
      const nl = this.buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (pred(line)) return line;
        continue;
      }
      const { value, done } = await this.reader.read();
      if (done) throw new Error(`stream ended before the expected line`);
      this.buf += value;
    }
  }
  cancel() {
    return this.reader.cancel();
  }
}

async function startMain(mode: string) {
  const socket = `@detcd-main-${Deno.pid}-${mode}-${Math.random().toString(36).slice(2)}`;
  const receiver = new Deno.Command("python3", { args: ["-c", RECEIVER, socket], stdout: "piped" }).spawn();
  const notes = new Lines(receiver.stdout);
  await notes.until((l) => l === "bound");
  const config = configWithFakeEmbed();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", config, MAIN, "--data-dir", Deno.makeTempDirSync()],
    env: { NOTIFY_SOCKET: socket, FAKE_EMBED: mode },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log = new Lines(child.stderr);
  const stop = async () => {
    await notes.cancel();
    receiver.kill();
    await receiver.status;
    Deno.removeSync(config);
  };
  return { child, notes, log, stop };
}

Deno.test("READY=1 after start; SIGTERM sends STOPPING=1, closes the server and exits 0", async () => {
  const { child, notes, log, stop } = await startMain("ok");
  try {
    assert.equal(await notes.until(() => true), "READY=1");
    child.kill("SIGTERM");
    assert.equal(await notes.until(() => true), "STOPPING=1");
    const sig = JSON.parse(await log.until((l) => l.includes("received signal")));
    assert.equal(sig.msg, "received signal; shutting down");
    assert.equal(sig.signal, "SIGTERM");
    await log.until((l) => l.includes("fake etcd closed"));
    assert.equal((await child.status).code, 0);
  } finally {
    await log.cancel();
    await stop();
  }
});

Deno.test("a second signal exits at once when closing hangs", async () => {
  const { child, notes, log, stop } = await startMain("hang");
  try {
    assert.equal(await notes.until(() => true), "READY=1");
    child.kill("SIGINT");
    await log.until((l) => l.includes("fake etcd closed"));
    child.kill("SIGINT");
    assert.equal((await child.status).code, 130);
  } finally {
    await log.cancel();
    await stop();
  }
});

Deno.test("a startup failure exits 1 with one error line", async () => {
  const { child, log, stop } = await startMain("fail");
  try {
    const entry = JSON.parse(await log.until((l) => l.includes('"level":"error"')));
    assert.equal(entry.msg, "failed to start etcd");
    assert.equal(entry.error, "listen tcp 127.0.0.1:2379: bind: address already in use");
    assert.equal((await child.status).code, 1);
  } finally {
    await log.cancel();
    await stop();
  }
});

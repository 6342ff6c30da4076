// sdNotify against a real AF_UNIX datagram socket held by a python3 helper, as systemd would hold it.
import assert from "node:assert/strict";
import { sdNotify } from "../../server/sd_notify.ts";

const RECEIVER = `
import socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print("bound", flush=True)
s.settimeout(float(sys.argv[2]))
try:
    print("got:" + s.recv(4096).decode(), flush=True)
except socket.timeout:
    print("timeout", flush=True)
`;

/** Starts the receiver, waits until it is bound, runs `send`, and returns what the receiver printed. */
async function receive(addr: string, timeoutSec: number, send: () => void): Promise<string> {
  const child = new Deno.Command("python3", { args: ["-c", RECEIVER, addr, String(timeoutSec)], stdout: "piped" })
    .spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("bound\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`receiver exited early: ${out}`);
    out += value;
  }
  send();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  await child.status;
  return out.replace("bound\n", "").trim();
}

Deno.test("sdNotify sends to a filesystem socket path", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/notify.sock`;
  let sent = false;
  const got = await receive(path, 5, () => sent = sdNotify("READY=1", path));
  assert.equal(sent, true);
  assert.equal(got, "got:READY=1");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("sdNotify sends to an abstract socket (@name)", async () => {
  const name = `@detcd-test-${Deno.pid}-${Math.random().toString(36).slice(2)}`;
  const got = await receive(name, 5, () => sdNotify("STOPPING=1", name));
  assert.equal(got, "got:STOPPING=1");
});

Deno.test("sdNotify reads NOTIFY_SOCKET from the environment", async () => {
  const name = `@detcd-env-${Deno.pid}`;
  Deno.env.set("NOTIFY_SOCKET", name);
  try {
    const got = await receive(name, 5, () => sdNotify("READY=1"));
    assert.equal(got, "got:READY=1");
  } finally {
    Deno.env.delete("NOTIFY_SOCKET");
  }
});

Deno.test("sdNotify without NOTIFY_SOCKET sends nothing", async () => {
  Deno.env.delete("NOTIFY_SOCKET");
  const name = `@detcd-unset-${Deno.pid}`;
  let sent = true;
  const got = await receive(name, 0.5, () => sent = sdNotify("READY=1"));
  assert.equal(sent, false);
  assert.equal(got, "timeout");
});

Deno.test("sdNotify reports a missing socket and unsupported addresses", () => {
  assert.throws(() => sdNotify("READY=1", "/nonexistent/dir/notify.sock"), /sendto/);
  assert.throws(() => sdNotify("READY=1", "vsock:2:1234"), /unsupported NOTIFY_SOCKET/);
});

// A local 3-member cluster in one command, like etcd's Procfile: infra1..3 on 127.0.0.1, clients on 2379, 22379,
// 32379 and peers on 2380, 22380, 32380 (or the ports given), data in <dir>/infraN.etcd, each member's log in
// <dir>/infraN.log. Ctrl-C (or SIGTERM) stops all three.
// usage: deno task cluster [--dir .] [--client-ports 2379,22379,32379] [--peer-ports 2380,22380,32380]
import { parseArgs } from "node:util";
import { V8_FLAGS } from "./v8_flags.ts";

const { values } = parseArgs({
  options: {
    dir: { type: "string", default: "." },
    "client-ports": { type: "string", default: "2379,22379,32379" },
    "peer-ports": { type: "string", default: "2380,22380,32380" },
  },
});
const clients = values["client-ports"]!.split(",").map(Number);
const peers = values["peer-ports"]!.split(",").map(Number);
if (clients.length !== 3 || peers.length !== 3) throw new Error("cluster: three client and three peer ports");
const main = new URL("../main.ts", import.meta.url).pathname;
const names = ["infra1", "infra2", "infra3"];
const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${peers[i]}`).join(",");

await Deno.mkdir(values.dir!, { recursive: true });
const logged: Promise<void>[] = [];
const children = await Promise.all(names.map(async (name, i) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      V8_FLAGS,
      main,
      `--name=${name}`,
      `--data-dir=${values.dir}/${name}.etcd`,
      `--listen-client-urls=http://127.0.0.1:${clients[i]}`,
      `--advertise-client-urls=http://127.0.0.1:${clients[i]}`,
      `--listen-peer-urls=http://127.0.0.1:${peers[i]}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peers[i]}`,
      `--initial-cluster-token=etcd-cluster-1`,
      `--initial-cluster=${initialCluster}`,
      "--initial-cluster-state=new",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // both go to the member's log (appended: O_APPEND keeps the two writers' lines whole)
  for (const out of [child.stdout, child.stderr]) {
    const log = await Deno.open(`${values.dir}/${name}.log`, { write: true, create: true, append: true });
    logged.push(out.pipeTo(log.writable));
  }
  console.log(`${name}: client http://127.0.0.1:${clients[i]}, peer http://127.0.0.1:${peers[i]}, pid ${child.pid}`);
  return child;
}));
console.log(`etcdctl --endpoints ${clients.map((p) => `127.0.0.1:${p}`).join(",")} member list -w table`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  for (const c of children) {
    try {
      c.kill("SIGTERM");
    } catch { /* already gone */ }
  }
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
const codes = await Promise.all(children.map((c) => c.status.then((s) => s.code)));
await Promise.all(logged);
console.log(`cluster stopped (exit codes ${codes.join(", ")})`);
Deno.exit(codes.every((c) => c === 0) ? 0 : 1);

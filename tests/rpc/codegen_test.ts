// rpc/gen/ is generated code: regenerating it from rpc/proto/ with the pinned buf and
// protoc-gen-es (as `deno task gen` does) must change nothing.
import { deepStrictEqual as assertEquals } from "node:assert/strict";

const root = new URL("../../", import.meta.url).pathname;
const npx = ["/usr/bin/npx", "/usr/local/bin/npx"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

async function files(dir: string, prefix = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(dir)) {
    const rel = `${prefix}${e.name}`;
    if (e.isDirectory) { for (const [k, v] of await files(`${dir}/${e.name}`, `${rel}/`)) out.set(k, v); }
    else out.set(rel, await Deno.readTextFile(`${dir}/${e.name}`));
  }
  return out;
}

Deno.test({
  name: "codegen: regenerating rpc/gen from rpc/proto changes nothing",
  ignore: npx === undefined,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "detcd-gen-" });
    using _ = { [Symbol.dispose]: () => Deno.removeSync(out, { recursive: true }) };
    // the same pinned versions as scripts/gen.sh, into a scratch output directory
    const gen = await new Deno.Command(npx!, {
      args: ["-y", "-p", "@bufbuild/buf@1.75.0", "-p", "@bufbuild/protoc-gen-es@2.17.0", "buf", "generate", "-o", out],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(gen.code, 0, new TextDecoder().decode(gen.stderr));
    const fresh = await files(`${out}/rpc/gen`);
    const committed = await files(`${root}rpc/gen`);
    assertEquals([...fresh.keys()].sort(), [...committed.keys()].sort());
    for (const [name, text] of fresh) assertEquals(text, committed.get(name), `rpc/gen/${name} differs`);
  },
});

// deno task compile: builds the single binary dist/detcd with `deno compile`. deno compile
// needs its denort runtime: it downloads one unless DENORT_BIN points at a local denort
// binary, which is how it works offline. Says plainly when neither is possible.
import { V8_FLAGS } from "./v8_flags.ts";

const denort = Deno.env.get("DENORT_BIN");
if (denort !== undefined) {
  try {
    if (!Deno.statSync(denort).isFile) throw new Error("not a file");
  } catch {
    console.error(`compile: DENORT_BIN=${denort} is not a file`);
    Deno.exit(1);
  }
  console.error(`compile: using denort from DENORT_BIN=${denort}`);
}
const root = new URL("../", import.meta.url).pathname;
Deno.mkdirSync(`${root}dist`, { recursive: true });
const built = await new Deno.Command(Deno.execPath(), {
  args: ["compile", "-A", V8_FLAGS, "--output", `${root}dist/detcd`, `${root}main.ts`],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!built.success) {
  console.error(
    "compile: deno compile failed. If the error above is about downloading denort, this machine cannot reach\n" +
      "Deno's download host: get a denort 2.9.6 binary for this platform and run again with DENORT_BIN=/path/to/denort.",
  );
  Deno.exit(1);
}
// A base binary that is not a denort (e.g. the full deno CLI) ignores the embedded program.
const version = await new Deno.Command(`${root}dist/detcd`, { args: ["--version"] }).output();
const text = new TextDecoder().decode(version.stdout).trim();
if (!text.includes("detcd Version")) {
  Deno.removeSync(`${root}dist/detcd`);
  console.error(
    `compile: the built binary does not run detcd (it printed: ${text.split("\n")[0]}); is DENORT_BIN a denort?`,
  );
  Deno.exit(1);
}
console.log(text);
console.log(`compile: built ${root}dist/detcd`);

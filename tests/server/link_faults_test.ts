// Injected link faults (DETCD_LINK_FAULTS): the rules file is read when it changes, a missing or empty file is a
// healthy network, and each rule hits only the peers it names.
import { deepStrictEqual as assertEquals, equal, ok } from "node:assert/strict";
import { LinkFaults } from "../../server/peer/link_faults.ts";
import { memoryLogger } from "../../server/logger.ts";

const waitFor = async (cond: () => boolean) => {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 20));
  ok(cond(), "condition not reached in 2 s");
};

Deno.test("link faults: rules from the file, re-read when it changes; unset means none", async () => {
  Deno.env.delete("DETCD_LINK_FAULTS");
  equal(LinkFaults.fromEnv(memoryLogger()), undefined);
  const dir = await Deno.makeTempDir();
  const path = `${dir}/links`;
  Deno.env.set("DETCD_LINK_FAULTS", path);
  const logger = memoryLogger();
  const f = LinkFaults.fromEnv(logger)!;
  try {
    // missing file: healthy
    equal(f.dropTo(0xan), false);
    equal(f.dropFrom(0xbn), false);
    Deno.writeTextFileSync(path, "drop-to a\ndelay-to * 150\nbogus rule\n");
    await waitFor(() => f.dropTo(0xan));
    equal(f.dropTo(0xbn), false, "only the peer named");
    equal(f.dropFrom(0xan), false, "one way");
    assertEquals([f.delayTo(0xan), f.delayTo(0xbn)], [150, 150]);
    ok(logger.lines.some((l) => l.includes("ignored link fault rule")));
    // a lossy link drops about the share it names
    Deno.writeTextFileSync(path, "drop-from * 0.3\n");
    await waitFor(() => !f.dropTo(0xan));
    let dropped = 0;
    for (let i = 0; i < 10_000; i++) if (f.dropFrom(0xcn)) dropped++;
    ok(dropped > 2500 && dropped < 3500, `dropped ${dropped} of 10000`);
    equal(f.delayTo(0xan), 0);
    Deno.writeTextFileSync(path, "delay-to b 5\n");
    await waitFor(() => f.delayTo(0xbn) === 5);
    for (let i = 0; i < 100; i++) equal(f.dropFrom(0xcn), false);
    // emptied: healthy again
    Deno.writeTextFileSync(path, "");
    await waitFor(() => f.delayTo(0xbn) === 0);
  } finally {
    f.stop();
    Deno.env.delete("DETCD_LINK_FAULTS");
    await Deno.remove(dir, { recursive: true });
  }
});

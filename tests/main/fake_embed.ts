// Stands in for server/embed.ts (mapped in by main_lifecycle_test.ts) so main's lifecycle can be tested alone.
// FAKE_EMBED picks the behaviour: "ok" starts, "fail" fails to start, "hang" never finishes closing.
import type { EtcdConfig } from "../../server/config.ts";
import type { Logger } from "../../server/logger.ts";

export function startEtcd(_cfg: EtcdConfig, logger: Logger) {
  const mode = Deno.env.get("FAKE_EMBED");
  if (mode === "fail") return Promise.reject(new Error("listen tcp 127.0.0.1:2379: bind: address already in use"));
  logger.info("ready to serve client requests");
  return Promise.resolve({
    closed: new Promise<void>(() => {}),
    close: () => {
      logger.info("fake etcd closed");
      return mode === "hang" ? new Promise<void>(() => {}) : Promise.resolve();
    },
  });
}

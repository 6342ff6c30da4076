// What `detcd --help` and `detcd --version` print, in etcd's layout so operators find the same sections.
import { FLAGS, type FlagSpec } from "./flag_table.ts";
import { DETCD_VERSION, ETCD_API_VERSION, ETCD_SERVER_VERSION } from "./version.ts";

/** Replaced at build time by scripts that know the commit; kept in etcd's wording otherwise. */
export const GIT_SHA = "Not provided";

const GO_ARCH: Record<string, string> = { x86_64: "amd64", aarch64: "arm64" };

export function versionText(): string {
  return [
    `detcd Version: ${DETCD_VERSION}`,
    `etcd Version: ${ETCD_SERVER_VERSION} (compatible)`,
    `etcd API Version: ${ETCD_API_VERSION}`,
    `Git SHA: ${GIT_SHA}`,
    `Go Version: deno ${Deno.version.deno}`,
    `Go OS/Arch: ${Deno.build.os}/${GO_ARCH[Deno.build.arch] ?? Deno.build.arch}`,
    "",
  ].join("\n");
}

function names(pred: (s: FlagSpec) => boolean): string {
  const list = FLAGS.filter(pred).map((s) => `--${s.name}`);
  const lines: string[] = [];
  for (const n of list) {
    if (lines.length === 0 || lines[lines.length - 1].length + n.length > 100) lines.push("   ");
    lines[lines.length - 1] += " " + n;
  }
  return lines.join("\n");
}

export function usageText(): string {
  const out = [
    "Usage:",
    "",
    "  detcd [flags]",
    "    Start an etcd-compatible (v3 API) server.",
    "",
    "  detcd --version",
    "    Show the version of detcd.",
    "",
    "  detcd -h | --help",
    "    Show the help information about detcd.",
    "",
    "  detcd --config-file",
    "    Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.",
    "",
    "Every flag can also be set through an environment variable named ETCD_<FLAG> (e.g. ETCD_DATA_DIR);",
    "a flag given on the command line must not also be set in the environment.",
  ];
  let section = "";
  for (const s of FLAGS) {
    if (s.support !== "implemented" || s.section === "") continue;
    if (s.section !== section) {
      section = s.section;
      out.push("", `${section}:`);
    }
    out.push(`  --${s.name} '${s.def}'`, `    ${s.usage}`);
  }
  out.push(
    "",
    "Accepted for compatibility with etcd but ignored (a warning is logged):",
    names((s) => s.support === "ignored"),
    "",
    "Refused unless left at their default (client certificates, peer TLS, discovery, v2 proxy and v2 API are not",
    "implemented):",
    names((s) => s.support === "rejected"),
    "",
  );
  return out.join("\n");
}

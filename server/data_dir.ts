// What a data dir holds decides how a member starts (etcd's identifyDataDirOrDie).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

export type DataDirKind = "member" | "proxy" | "empty";

export function identifyDataDir(dataDir: string): DataDirKind {
  if (!existsSync(dataDir)) return "empty";
  const names = readdirSync(dataDir);
  let member = false;
  let proxy = false;
  for (const name of names) {
    if (name === "member") member = true;
    else if (name === "proxy") proxy = true;
  }
  if (member && proxy) throw new Error(`invalid datadir contains both member and proxy directories: ${dataDir}`);
  if (member) return "member";
  if (proxy) return "proxy";
  return "empty";
}

export function memberDir(dataDir: string): string {
  return join(dataDir, "member");
}

export function walDir(dataDir: string, configured: string): string {
  return configured !== "" ? configured : join(memberDir(dataDir), "wal");
}

export function snapDir(dataDir: string): string {
  return join(memberDir(dataDir), "snap");
}

export function backendPath(dataDir: string): string {
  return join(snapDir(dataDir), "db");
}

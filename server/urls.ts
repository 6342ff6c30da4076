// URL list parsing with etcd's rules (pkg/types.NewURLs): the raw text is checked before `new URL`, because WHATWG
// URL drops default ports and adds a "/" path, which would hide exactly what etcd rejects.
import { isIP } from "node:net";

const SCHEMES = new Set(["http", "https", "unix", "unixs"]);

/** Go's net.SplitHostPort; throws with Go's wording. */
export function splitHostPort(hostport: string): { host: string; port: string } {
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0) throw new Error(`address ${hostport}: missing ']' in address`);
    if (hostport[end + 1] !== ":") throw new Error(`address ${hostport}: missing port in address`);
    return { host: hostport.slice(1, end), port: hostport.slice(end + 2) };
  }
  const colon = hostport.lastIndexOf(":");
  if (colon < 0) throw new Error(`address ${hostport}: missing port in address`);
  const host = hostport.slice(0, colon);
  if (host.includes(":")) throw new Error(`address ${hostport}: too many colons in address`);
  return { host, port: hostport.slice(colon + 1) };
}

function parseOne(raw: string): URL {
  const s = raw.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(s);
  const scheme = m?.[1].toLowerCase();
  if (!m || !SCHEMES.has(scheme!)) throw new Error(`URL scheme must be http, https, unix, or unixs: ${s}`);
  const rest = m[2].startsWith("//") ? m[2].slice(2) : "";
  const authEnd = rest.search(/[/?#]/);
  const authority = authEnd < 0 ? rest : rest.slice(0, authEnd);
  const hostport = authority.slice(authority.lastIndexOf("@") + 1);
  try {
    splitHostPort(hostport);
  } catch {
    throw new Error(`URL address does not have the form "host:port": ${s}`);
  }
  const afterAuth = authEnd < 0 ? "" : rest.slice(authEnd);
  const path = afterAuth.split(/[?#]/, 1)[0];
  if (m[2].startsWith("//") ? path !== "" : m[2] !== "") throw new Error(`URL must not contain a path: ${s}`);
  try {
    return new URL(`${scheme}://${hostport}`);
  } catch {
    throw new Error(`invalid URL: ${s}`);
  }
}

/** Parses a comma-separated URL list like etcd: trimmed, validated, sorted by text, duplicates removed. */
export function parseUrls(list: string): URL[] {
  const byText = new Map<string, URL>();
  for (const part of list.split(",")) {
    const u = parseOne(part);
    byText.set(urlString(u), u);
  }
  return [...byText.keys()].sort().map((k) => byText.get(k)!);
}

/** etcd's textual form of a listen/advertise URL: scheme://host:port with no trailing slash. */
export function urlString(u: URL): string {
  return `${u.protocol}//${u.host}`;
}

/** Host and numeric port, filling in the default port that WHATWG URL hides (http://h:80 has port ""). */
export function urlHostPort(u: URL): { hostname: string; port: number } {
  const hostname = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port !== "" ? Number(u.port) : u.protocol === "https:" || u.protocol === "unixs:" ? 443 : 80;
  return { hostname, port };
}

/** etcd's checkBindURLs: a listen URL must name an IP or "localhost", since the server binds it. */
export function checkBindUrls(urls: URL[]): void {
  for (const u of urls) {
    if (u.protocol === "unix:" || u.protocol === "unixs:") continue;
    const { hostname } = urlHostPort(u);
    if (hostname === "localhost") continue;
    if (isIP(hostname) === 0) throw new Error(`expected IP in URL for binding (${urlString(u)})`);
  }
}

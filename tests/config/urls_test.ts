// URL parsing helpers against etcd's pkg/types.NewURLs and embed.checkBindURLs.
import assert from "node:assert/strict";
import { checkBindUrls, parseUrls, splitHostPort, urlHostPort, urlString } from "../../server/urls.ts";

Deno.test("parseUrls accepts etcd's URL forms", () => {
  const cases: [string, string[]][] = [
    ["http://127.0.0.1:2379", ["http://127.0.0.1:2379"]],
    ["https://a.example:443", ["https://a.example"]], // WHATWG URL drops the default port from .host
    ["unix://localhost:2379", ["unix://localhost:2379"]],
    ["unixs://localhost:2379", ["unixs://localhost:2379"]],
    ["HTTP://x:1", ["http://x:1"]],
    ["http://[::1]:2380", ["http://[::1]:2380"]],
    ["http://user@h:1", ["http://h:1"]],
    ["http://h:1?x=y", ["http://h:1"]],
    ["http://b:1,http://a:1", ["http://a:1", "http://b:1"]],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseUrls(input).map(urlString), want, input);
});

Deno.test("parseUrls rejects what etcd rejects, with etcd's wording", () => {
  const cases: [string, string][] = [
    ["ftp://x:1", "URL scheme must be http, https, unix, or unixs: ftp://x:1"],
    ["localhost:2379", "URL scheme must be http, https, unix, or unixs: localhost:2379"],
    ["", "URL scheme must be http, https, unix, or unixs: "],
    ["http://x", 'URL address does not have the form "host:port": http://x'],
    ["http://::1:2379", 'URL address does not have the form "host:port": http://::1:2379'],
    ["http:x:1", 'URL address does not have the form "host:port": http:x:1'],
    ["http://x:1/", "URL must not contain a path: http://x:1/"],
    ["http://x:1/v2", "URL must not contain a path: http://x:1/v2"],
  ];
  for (const [input, msg] of cases) assert.throws(() => parseUrls(input), { message: msg }, input);
});

Deno.test("urlHostPort fills in default ports and unbrackets IPv6", () => {
  assert.deepEqual(urlHostPort(parseUrls("http://h:80")[0]), { hostname: "h", port: 80 });
  assert.deepEqual(urlHostPort(parseUrls("https://h:443")[0]), { hostname: "h", port: 443 });
  assert.deepEqual(urlHostPort(parseUrls("http://[::1]:2379")[0]), { hostname: "::1", port: 2379 });
});

Deno.test("splitHostPort follows Go's net.SplitHostPort", () => {
  assert.deepEqual(splitHostPort("a:1"), { host: "a", port: "1" });
  assert.deepEqual(splitHostPort("[::1]:1"), { host: "::1", port: "1" });
  assert.deepEqual(splitHostPort(":1"), { host: "", port: "1" });
  assert.throws(() => splitHostPort("a"), /missing port/);
  assert.throws(() => splitHostPort("a:b:1"), /too many colons/);
});

Deno.test("checkBindUrls wants an IP or localhost", () => {
  checkBindUrls(parseUrls("http://localhost:1,http://0.0.0.0:2,http://[::]:3,unix://sock:0"));
  assert.throws(() => checkBindUrls(parseUrls("http://example.com:1")), {
    message: "expected IP in URL for binding (http://example.com:1)",
  });
});

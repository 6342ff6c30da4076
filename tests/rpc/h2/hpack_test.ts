// HPACK against RFC 7541 Appendix C (with and without Huffman coding) and encoder round trips.

import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { encodeHeaders, HpackDecoder, HpackError } from "../../../rpc/h2/hpack.ts";

const hex = (s: string) => new Uint8Array(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));

Deno.test("hpack: C.2 single fields", () => {
  assertEquals(
    new HpackDecoder().decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")),
    { "custom-key": "custom-header" },
  );
  assertEquals(new HpackDecoder().decode(hex("040c 2f73 616d 706c 652f 7061 7468")), { ":path": "/sample/path" });
  assertEquals(new HpackDecoder().decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74")), { password: "secret" });
  assertEquals(new HpackDecoder().decode(hex("82")), { ":method": "GET" });
});

const REQUESTS: Record<string, string>[] = [
  { ":method": "GET", ":scheme": "http", ":path": "/", ":authority": "www.example.com" },
  { ":method": "GET", ":scheme": "http", ":path": "/", ":authority": "www.example.com", "cache-control": "no-cache" },
  {
    ":method": "GET",
    ":scheme": "https",
    ":path": "/index.html",
    ":authority": "www.example.com",
    "custom-key": "custom-value",
  },
];

function series(blocks: string[], want: Record<string, string>[], sizes: number[], tableSize = 4096) {
  const d = new HpackDecoder(tableSize);
  blocks.forEach((b, i) => {
    assertEquals(d.decode(hex(b)), want[i]);
    assertEquals(d.tableSize, sizes[i]);
  });
}

Deno.test("hpack: C.3 requests without Huffman", () => {
  series(
    [
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ],
    REQUESTS,
    [57, 110, 164],
  );
});

Deno.test("hpack: C.4 requests with Huffman", () => {
  series(
    [
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ],
    REQUESTS,
    [57, 110, 164],
  );
});

const RESPONSES: Record<string, string>[] = [
  {
    ":status": "302",
    "cache-control": "private",
    date: "Mon, 21 Oct 2013 20:13:21 GMT",
    location: "https://www.example.com",
  },
  {
    ":status": "307",
    "cache-control": "private",
    date: "Mon, 21 Oct 2013 20:13:21 GMT",
    location: "https://www.example.com",
  },
  {
    ":status": "200",
    "cache-control": "private",
    date: "Mon, 21 Oct 2013 20:13:22 GMT",
    location: "https://www.example.com",
    "content-encoding": "gzip",
    "set-cookie": "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
  },
];

Deno.test("hpack: C.5 responses without Huffman (256-byte table, evictions)", () => {
  series(
    [
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d
     546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
      "4803 3330 37c1 c0bf",
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f
     6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b
     2076 6572 7369 6f6e 3d31`,
    ],
    RESPONSES,
    [222, 222, 215],
    256,
  );
});

Deno.test("hpack: C.6 responses with Huffman (256-byte table, evictions)", () => {
  series(
    [
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7
     8f0b 97c8 e9ae 82ae 43d3`,
      "4883 640e ffc1 c0bf",
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335
     dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ],
    RESPONSES,
    [222, 222, 215],
    256,
  );
});

Deno.test("hpack: dynamic table size update, errors", () => {
  const d = new HpackDecoder();
  d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
  assertEquals(d.tableSize, 55);
  assertEquals(d.decode(hex("20 82")), { ":method": "GET" }); // size 0 evicts everything
  assertEquals(d.tableSize, 0);
  throws(() => d.decode(hex("be")), HpackError); // index 62: empty dynamic table
  throws(() => d.decode(hex("80")), HpackError); // index 0
  throws(() => d.decode(hex("3fe2 1f")), HpackError); // size update beyond the advertised 4096
  throws(() => d.decode(hex("82 20")), HpackError); // size update after a field
  throws(() => d.decode(hex("040c 2f73")), HpackError); // truncated string
  throws(() => d.decode(hex("0085 f2b2 4a87 ff")), HpackError); // Huffman padding longer than 7 bits
});

Deno.test("hpack: header list size limit", () => {
  const d = new HpackDecoder(4096, 100);
  assertEquals(d.decode(encodeHeaders({ "x-big": "a".repeat(200) })), undefined);
  assertEquals(d.decode(encodeHeaders({ small: "b" })), { small: "b" });
});

Deno.test("hpack: encoder round trip", () => {
  const h = {
    "content-type": "application/grpc",
    ":status": 200,
    "grpc-status": "0",
    "grpc-message": "x".repeat(300),
    "x-multi": ["a", "b"],
    "x-utf8": "héllo",
    "content-length": 12,
  };
  const block = encodeHeaders(h);
  assertEquals(block[0], 0x88, ":status 200 first, from the static table");
  assertEquals(new HpackDecoder().decode(block), {
    ":status": "200",
    "content-type": "application/grpc",
    "grpc-status": "0",
    "grpc-message": "x".repeat(300),
    "x-multi": "a, b",
    "x-utf8": "h\xc3\xa9llo", // values are octets: UTF-8 bytes decode as latin1
    "content-length": "12",
  });
});

Deno.test("hpack: random and mutated header blocks decode or fail with HpackError, never anything else", () => {
  let x = 12345;
  const rand = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const valid = encodeHeaders({
    ":method": "POST",
    ":path": "/etcdserverpb.KV/Range",
    "content-type": "application/grpc",
  });
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const block = i % 2 === 0 ? new Uint8Array(rand(64)).map(() => rand(256)) : Uint8Array.from(valid);
    if (i % 2 === 1) { for (let j = 0; j < 1 + rand(3); j++) block[rand(block.length)] = rand(256); }
    // a fresh decoder per block keeps each case independent of the dynamic table left by the last
    const d = new HpackDecoder(4096, 65536);
    try {
      if (d.decode(block) !== undefined) decoded++;
    } catch (e) {
      if (!(e instanceof HpackError)) throw new Error(`block ${i} (${Array.from(block)}): ${e}`);
    }
  }
  assert(decoded > 1000, `only ${decoded} blocks decoded: the mutations are too destructive to test much`);
});

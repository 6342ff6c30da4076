// HPACK (RFC 7541): a decoder with the static and dynamic tables and Huffman decoding, and an encoder that only
// uses the static table and literals without indexing (our responses are few, mostly constant header sets, which
// callers pre-encode once).

import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from "./huffman_table.ts";

export class HpackError extends Error {}

// Decoded request headers: lowercase names; repeated fields joined with ", " ("; " for cookie).
export type HeaderMap = Record<string, string>;
export type OutgoingHeaders = Readonly<Record<string, string | number | readonly string[] | undefined>>;

// RFC 7541 Appendix A.
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];
const STATIC_LEN = STATIC_TABLE.length;
const ENTRY_OVERHEAD = 32;

// Huffman decoding trie: node n's children are TRIE[2n] and TRIE[2n+1]; a leaf is stored as -(symbol + 1).
const TRIE = (() => {
  const t = new Int32Array(2 * 512).fill(0);
  let next = 1;
  for (let sym = 0; sym <= 256; sym++) {
    const code = sym === 256 ? 0x3fffffff : HUFFMAN_CODES[sym];
    const len = sym === 256 ? 30 : HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let i = len - 1; i > 0; i--) {
      const slot = 2 * node + ((code >>> i) & 1);
      if (t[slot] === 0) t[slot] = next++;
      node = t[slot];
    }
    t[2 * node + (code & 1)] = -(sym + 1);
  }
  return t;
})();

function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  let out = "";
  let node = 0;
  let depth = 0; // bits consumed since the last complete symbol
  let ones = true; // all of those bits were 1 (valid padding is a prefix of EOS)
  for (let i = start; i < end; i++) {
    const b = buf[i];
    for (let bit = 7; bit >= 0; bit--) {
      const v = (b >> bit) & 1;
      const child = TRIE[2 * node + v];
      depth++;
      ones &&= v === 1;
      if (child < 0) {
        if (child === -257) throw new HpackError("hpack: EOS in Huffman string");
        out += String.fromCharCode(-child - 1);
        node = 0;
        depth = 0;
        ones = true;
      } else node = child;
    }
  }
  if (depth > 7 || !ones) throw new HpackError("hpack: invalid Huffman padding");
  return out;
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  let out = "";
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return out;
}

export class HpackDecoder {
  // Newest first, as HPACK indexes them.
  #dynamic: [string, string][] = [];
  #size = 0;
  #maxSize: number;
  #pos = 0;

  // maxTableSize: the SETTINGS_HEADER_TABLE_SIZE we advertise; maxListSize: largest decoded header list.
  constructor(readonly maxTableSize = 4096, readonly maxListSize = 65536) {
    this.#maxSize = maxTableSize;
  }

  // Bytes the dynamic table holds (RFC 7541 §4.1).
  get tableSize(): number {
    return this.#size;
  }

  // Decodes one complete header block. Throws HpackError on a compression error (a connection error) and
  // returns undefined when the list exceeds maxListSize (the block is still fully decoded to keep the table in step).
  decode(block: Uint8Array): HeaderMap | undefined {
    const out: HeaderMap = {};
    let listSize = 0;
    let sawField = false;
    this.#pos = 0;
    const end = block.length;
    while (this.#pos < end) {
      const b = block[this.#pos];
      let name: string, value: string;
      if (b & 0x80) {
        const idx = this.#int(block, 7);
        if (idx === 0) throw new HpackError("hpack: index 0");
        [name, value] = this.#entry(idx);
      } else if (b & 0x40) {
        [name, value] = this.#literal(block, 6);
        this.#add(name, value);
      } else if (b & 0x20) {
        // Table size updates must come first in a block.
        if (sawField) throw new HpackError("hpack: table size update after a field");
        const size = this.#int(block, 5);
        if (size > this.maxTableSize) throw new HpackError("hpack: table size update too large");
        this.#maxSize = size;
        this.#evict(0);
        continue;
      } else {
        [name, value] = this.#literal(block, 4); // without indexing / never indexed
      }
      sawField = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      const prev = out[name];
      out[name] = prev === undefined ? value : prev + (name === "cookie" ? "; " : ", ") + value;
    }
    return listSize > this.maxListSize ? undefined : out;
  }

  #int(buf: Uint8Array, prefix: number): number {
    const max = (1 << prefix) - 1;
    let n = buf[this.#pos++] & max;
    if (n < max) return n;
    let shift = 0;
    for (;;) {
      if (this.#pos >= buf.length) throw new HpackError("hpack: truncated integer");
      const b = buf[this.#pos++];
      n += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
      if (shift > 28) throw new HpackError("hpack: integer overflow");
    }
    return n;
  }

  #string(buf: Uint8Array): string {
    if (this.#pos >= buf.length) throw new HpackError("hpack: truncated string");
    const huffman = (buf[this.#pos] & 0x80) !== 0;
    const len = this.#int(buf, 7);
    const start = this.#pos;
    if (start + len > buf.length) throw new HpackError("hpack: truncated string");
    this.#pos += len;
    return huffman ? huffmanDecode(buf, start, start + len) : latin1(buf, start, start + len);
  }

  #literal(buf: Uint8Array, prefix: number): [string, string] {
    const idx = this.#int(buf, prefix);
    const name = idx === 0 ? this.#string(buf) : this.#entry(idx)[0];
    return [name, this.#string(buf)];
  }

  #entry(idx: number): readonly [string, string] {
    if (idx <= STATIC_LEN) return STATIC_TABLE[idx - 1];
    const e = this.#dynamic[idx - STATIC_LEN - 1];
    if (!e) throw new HpackError(`hpack: invalid index ${idx}`);
    return e;
  }

  #add(name: string, value: string) {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    if (size <= this.#maxSize) {
      this.#dynamic.unshift([name, value]);
      this.#size += size;
    }
  }

  // Evicts the oldest entries until `room` more bytes fit.
  #evict(room: number) {
    while (this.#dynamic.length > 0 && this.#size + room > this.#maxSize) {
      const [n, v] = this.#dynamic.pop()!;
      this.#size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}

const STATIC_NAME = new Map<string, number>();
const STATIC_PAIR = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
  if (v !== "") STATIC_PAIR.set(n + "\0" + v, i + 1);
});
const utf8 = new TextEncoder();

// Encodes a header list (names must be lowercase) with static-table references and literals without indexing.
export function encodeHeaders(headers: OutgoingHeaders): Uint8Array {
  const out: number[] = [];
  // Pseudo-headers first, as RFC 9113 §8.3 requires.
  for (const pass of [true, false]) {
    for (const name in headers) {
      if ((name[0] === ":") !== pass) continue;
      const v = headers[name];
      if (v === undefined) continue;
      if (typeof v === "object") { for (const x of v) encodeField(out, name, x); }
      else encodeField(out, name, String(v));
    }
  }
  return new Uint8Array(out);
}

function encodeField(out: number[], name: string, value: string) {
  const pair = STATIC_PAIR.get(name + "\0" + value);
  if (pair !== undefined) return encodeInt(out, 0x80, 7, pair);
  const idx = STATIC_NAME.get(name);
  if (idx !== undefined) encodeInt(out, 0, 4, idx);
  else {
    out.push(0);
    encodeString(out, name);
  }
  encodeString(out, value);
}

function encodeString(out: number[], s: string) {
  // deno-lint-ignore no-control-regex
  const bytes = /^[\x00-\x7f]*$/.test(s) ? undefined : utf8.encode(s);
  const len = bytes ? bytes.length : s.length;
  encodeInt(out, 0, 7, len);
  if (bytes) { for (const b of bytes) out.push(b); }
  else for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
}

function encodeInt(out: number[], flags: number, prefix: number, n: number) {
  const max = (1 << prefix) - 1;
  if (n < max) return out.push(flags | n);
  out.push(flags | max);
  n -= max;
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

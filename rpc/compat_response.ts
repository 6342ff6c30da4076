// What the HTTP/1.1 and HTTP/2 response objects (rpc/h1, rpc/h2/compat.ts) share: the part of node's
// ServerResponse the routes and connect-node's adapter use for headers and state, before the protocol writes them.
import { EventEmitter } from "node:events";

export type HeaderValue = string | number | readonly string[];
export type HeaderInit = Readonly<Record<string, HeaderValue | undefined>>;

export abstract class CompatResponse extends EventEmitter {
  statusCode = 200;
  errored: Error | null = null;
  writableEnded = false;
  protected headers: Record<string, HeaderValue> = {};
  protected trailers: Record<string, HeaderValue> | undefined;

  abstract get headersSent(): boolean;

  setHeader(name: string, value: HeaderValue): this {
    this.headers[name.toLowerCase()] = value;
    return this;
  }

  getHeader(name: string): HeaderValue | undefined {
    return this.headers[name.toLowerCase()];
  }

  removeHeader(name: string): void {
    delete this.headers[name.toLowerCase()];
  }

  addTrailers(trailers: HeaderInit): void {
    this.trailers ??= {};
    for (const [k, v] of Object.entries(trailers)) if (v !== undefined) this.trailers[k.toLowerCase()] = v;
  }

  /** The headers set so far merged with `extra`, names in lower case, without those `skip` leaves out. */
  protected merged(extra: HeaderInit | undefined, skip: (name: string) => boolean): Record<string, HeaderValue> {
    const out: Record<string, HeaderValue> = {};
    for (const h of [this.headers, extra ?? {}]) {
      for (const [k, v] of Object.entries(h)) {
        const name = k.toLowerCase();
        if (v !== undefined && !skip(name)) out[name] = v;
      }
    }
    return out;
  }
}

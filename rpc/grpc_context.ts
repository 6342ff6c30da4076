// HandlerContext for calls on the gRPC fast path. Everything an implementation rarely touches (headers as a
// Headers object, AbortSignal, context values) is built on first use, so a plain unary call allocates almost nothing.

import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { type ContextValues, createContextValues, type HandlerContext } from "@connectrpc/connect";
// Request headers as the HTTP/2 layer decodes them.
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;
// Response header objects as rpc/h2 encodes them.
export type Headerish = Readonly<Record<string, string | number>>;

export class GrpcContext implements HandlerContext {
  #signal: AbortController | undefined;
  #requestHeader: Headers | undefined;
  #responseHeader: Headers | undefined;
  #responseTrailer: Headers | undefined;
  #values: ContextValues | undefined;
  #aborted: unknown = undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    readonly headers: RequestHeaders,
    readonly deadline: number | undefined,
  ) {}

  get protocolName(): string {
    return "grpc";
  }
  get requestMethod(): string {
    return "POST";
  }
  get url(): string {
    return `http://${this.headers[":authority"] ?? "localhost"}${this.headers[":path"]}`;
  }
  get signal(): AbortSignal {
    if (!this.#signal) {
      this.#signal = new AbortController();
      if (this.#aborted !== undefined) this.#signal.abort(this.#aborted);
    }
    return this.#signal.signal;
  }
  readonly timeoutMs = (): number | undefined => this.deadline === undefined ? undefined : this.deadline - Date.now();

  get requestHeader(): Headers {
    if (!this.#requestHeader) {
      const h = new Headers();
      for (const [k, v] of Object.entries(this.headers)) {
        if (k[0] === ":" || v === undefined) continue;
        if (Array.isArray(v)) { for (const x of v) h.append(k, x); }
        else h.set(k, v);
      }
      this.#requestHeader = h;
    }
    return this.#requestHeader;
  }
  get responseHeader(): Headers {
    return this.#responseHeader ??= new Headers();
  }
  get responseTrailer(): Headers {
    return this.#responseTrailer ??= new Headers();
  }
  get values(): ContextValues {
    return this.#values ??= createContextValues();
  }

  // Fires the signal (client went away, deadline passed) whether or not anyone has looked at it yet.
  abort(reason: unknown): void {
    if (this.#aborted !== undefined) return;
    this.#aborted = reason;
    this.#signal?.abort(reason);
  }

  // Headers and trailers the implementation set, merged into what the transport sends.
  addResponseHeaders(into: Headerish): Headerish {
    return merge(this.#responseHeader, into);
  }
  addResponseTrailers(into: Headerish): Headerish {
    return merge(this.#responseTrailer, into);
  }
}

function merge(h: Headers | undefined, into: Headerish): Headerish {
  if (!h) return into;
  const out: Record<string, string | number> = { ...into };
  h.forEach((v, k) => {
    if (!(k in out)) out[k] = v;
  });
  return out;
}

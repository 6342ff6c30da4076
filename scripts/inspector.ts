// A minimal client for the V8 inspector protocol of a Deno process started with
// --inspect=127.0.0.1:PORT, shared by the profiling scripts.

// deno-lint-ignore no-explicit-any -- inspector protocol results are untyped JSON
export type Json = any;

export interface Inspector {
  call(method: string, params?: Record<string, unknown>): Promise<Json>;
  close(): void;
}

export async function connectInspector(port: string): Promise<Inspector> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((r) => ws.onopen = r);
  let next = 1;
  const pending = new Map<number, (v: unknown) => void>();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  };
  return {
    call: (method, params = {}) =>
      new Promise<Json>((resolve) => {
        const id = next++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

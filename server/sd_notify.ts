// systemd's sd_notify(3): one datagram on the AF_UNIX socket named by $NOTIFY_SOCKET. Deno has no stable unix
// datagram API, so this calls libc through FFI (granted by -A/--allow-ffi); it runs a handful of times per process.

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 108;

const symbols = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

let libc: Deno.DynamicLibrary<typeof symbols> | undefined;

function errno(lib: Deno.DynamicLibrary<typeof symbols>): number {
  const p = lib.symbols.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** struct sockaddr_un for a path, or for "@name" the abstract name (leading NUL, length without terminator). */
function sockaddr(target: string): Uint8Array {
  const abstract = target.startsWith("@");
  const name = new TextEncoder().encode(abstract ? target.slice(1) : target);
  if (name.length + 1 > SUN_PATH_MAX) throw new Error(`NOTIFY_SOCKET path too long: ${target}`);
  // family (2 bytes) + optional leading NUL + name + terminating NUL for filesystem paths
  const addr = new Uint8Array(2 + name.length + 1);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, abstract ? 3 : 2);
  return addr;
}

/**
 * Sends `state` (e.g. "READY=1", "STOPPING=1") to the service manager. Returns false without doing anything when
 * NOTIFY_SOCKET is unset (not started by systemd with Type=notify), true once sent; throws if sending fails.
 */
export function sdNotify(state: string, socketPath = Deno.env.get("NOTIFY_SOCKET")): boolean {
  if (!socketPath) return false;
  if (!socketPath.startsWith("/") && !socketPath.startsWith("@")) {
    throw new Error(`unsupported NOTIFY_SOCKET address ${socketPath}`);
  }
  const addr = sockaddr(socketPath);
  libc ??= Deno.dlopen(Deno.build.os === "darwin" ? "libc.dylib" : "libc.so.6", symbols);
  const fd = libc.symbols.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`sd_notify: socket: errno ${errno(libc)}`);
  try {
    const msg = new TextEncoder().encode(state);
    const n = libc.symbols.sendto(fd, msg, BigInt(msg.length), MSG_NOSIGNAL, addr, addr.length);
    if (Number(n) < 0) throw new Error(`sd_notify: sendto ${socketPath}: errno ${errno(libc)}`);
  } finally {
    libc.symbols.close(fd);
  }
  return true;
}

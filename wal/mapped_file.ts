// Read-only memory maps of files (libc mmap through FFI, granted by -A/--allow-ffi), for the replays of a restart: its
// WAL and backend, ~100 MB, read into fresh memory cost a page fault per 4 KiB, which virtual machines make dear
// (measured here: 64 MiB read into a new buffer in 190 ms, 11 µs a page; mapped from the page cache in 25 ms). Where
// FFI is not granted or mmap fails, callers read the file as before.
//
// A map lives as long as its ArrayBuffer: it is unmapped once that is collected, when no view of it is left. The
// file must never shrink under a view that is still read (the page would fault with SIGBUS): the WAL and the backend
// only truncate past their last valid record, which no view covers, and replace a file by renaming another over it.

const O_RDONLY = 0, O_CLOEXEC = 0o2000000;
const PROT_READ = 1, MAP_SHARED = 1, MAP_POPULATE = 0x8000, MADV_DONTNEED = 4;
/** mmap's MAP_FAILED, (void *)-1. */
const MAP_FAILED = (1n << 64n) - 1n;
/** Offsets are rounded down to this (a multiple of any page size Linux uses). */
export const MAP_ALIGN = 64 * 1024;

const symbols = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
} as const;

/** libc, null where it cannot be had (not Linux, FFI not granted). */
let libc: Deno.DynamicLibrary<typeof symbols> | null | undefined;

function lib(): Deno.DynamicLibrary<typeof symbols> | null {
  if (libc === undefined) {
    try {
      libc = Deno.build.os === "linux" ? Deno.dlopen("libc.so.6", symbols) : null;
    } catch {
      libc = null; // no --allow-ffi
    }
  }
  return libc;
}

interface Mapping {
  ptr: Deno.PointerObject;
  length: number;
}

const unmapOnCollect = new FinalizationRegistry<Mapping>(({ ptr, length }) => {
  lib()!.symbols.munmap(ptr, BigInt(length));
});
const mappings = new WeakMap<ArrayBufferLike, Mapping>();

/**
 * The file's bytes [offset, offset + length), mapped read-only and populated (the pages the page cache holds are
 * mapped at once), or undefined where mapping is not possible. `offset` must be a multiple of MAP_ALIGN and the range
 * inside the file.
 */
export function mapFile(path: string, offset: number, length: number): Uint8Array<ArrayBuffer> | undefined {
  if (offset % MAP_ALIGN !== 0) throw new Error(`mapFile: offset ${offset} is not aligned`);
  const l = length > 0 ? lib() : null;
  if (l === null) return undefined;
  const fd = l.symbols.open(new TextEncoder().encode(`${path}\0`), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return undefined;
  try {
    const ptr = l.symbols.mmap(null, BigInt(length), PROT_READ, MAP_SHARED | MAP_POPULATE, fd, BigInt(offset));
    if (ptr === null || Deno.UnsafePointer.value(ptr) === MAP_FAILED) return undefined;
    const buffer = Deno.UnsafePointerView.getArrayBuffer(ptr, length);
    const mapping = { ptr, length };
    unmapOnCollect.register(buffer, mapping);
    mappings.set(buffer, mapping);
    return new Uint8Array(buffer);
  } finally {
    l.symbols.close(fd);
  }
}

/** Whether `bytes` views a map made by mapFile. */
export function isMapped(bytes: Uint8Array): boolean {
  return mappings.has(bytes.buffer);
}

/**
 * Lets go of the pages of the map `bytes` views (madvise MADV_DONTNEED): the process no longer counts them, and a view
 * that reads them again gets them back from the page cache (or the file). For a map whose views are kept but seldom
 * read (a replayed WAL segment's entries). Does nothing to memory that is not a map.
 */
export function releasePages(bytes: Uint8Array): void {
  const m = mappings.get(bytes.buffer);
  if (m !== undefined) lib()!.symbols.madvise(m.ptr, BigInt(m.length), MADV_DONTNEED);
}

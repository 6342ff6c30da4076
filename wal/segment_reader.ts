// Reads a WAL segment for replay without holding its preallocated tail: a segment is 64 MiB of which a restart
// usually needs a little. The records are walked frame by frame up to the first zero frame (where the writer
// stopped); the rest must be zeros, which is checked in bounded chunks and not kept. Anything unusual — a zero frame
// with data after it, a frame that does not parse, a record past the end — reads the whole file instead, so the
// record decoder makes the same torn-tail or corruption call it always makes. The file is mapped where it can be (see
// mapped_file.ts), and read otherwise.
import { readWholeSync } from "./fs_util.ts";
import { MAP_ALIGN, mapFile } from "./mapped_file.ts";
import { isZero } from "./record_decoder.ts";
import { FRAME_BYTES, isZeroFrame, MAX_RECORD_BYTES, readFrame } from "./walpb.ts";

/**
 * Segments are read synchronously, 4 MiB at a time: a preallocated 64 MiB of zeros took 60-70 ms in 1 MiB async reads
 * (a thread-pool hop each) and ~20 ms so (measured), on every restart; replay runs before the member serves anyone.
 */
const CHUNK = 4 * 1024 * 1024;

/**
 * The segment's records (`data`: a prefix of the file when the rest is zeros), as RecordDecoder.load takes them,
 * and the file's size. `checkZeros` false takes the first zero frame for the end without looking further: for a
 * reader whose decoder would stop there anyway (the call on what follows it is replay's).
 */
export async function readSegment(
  path: string,
  file: Deno.FsFile,
  checkZeros = true,
): Promise<{ data: Uint8Array; size: number }> {
  const st = await file.stat();
  return { data: readRecords(path, file, st.size, fileSpace(st), checkZeros), size: st.size };
}

/**
 * Whether a segment holds only zeros from `off` to its end: what readSegment checks past the first zero frame, for
 * records a reader that did not check (checkZeros false) took from it.
 */
export async function zerosFollowFrom(file: Deno.FsFile, off: number): Promise<boolean> {
  const st = await file.stat();
  return off >= st.size ||
    zerosFollow(file, off, st.size, fileSpace(st), (from, to) => zerosFrom(file, from, to));
}

function fileSpace(st: Deno.FileInfo): FileSpace {
  return { allocated: st.blocks === null ? Infinity : st.blocks * 512, block: st.blksize || 4096 };
}

/** A segment's allocated bytes (st_blocks; Infinity where unknown) and its block size. */
interface FileSpace {
  allocated: number;
  block: number;
}

/**
 * Whether the file holds only zeros from `off` (a zero frame, `buf` loaded past it) to its end. A segment is grown
 * sparse (ftruncate) and written from its start, so when it has no more blocks than its records fill, all past the
 * block `off` is in is a hole: only the rest of that block is read (a restart spent ~25 ms reading 64 MiB of zeros).
 * Any other layout (preallocated blocks, a stray write) is read through.
 */
function zerosFollow(
  file: Deno.FsFile,
  off: number,
  size: number,
  space: FileSpace,
  zeroRange: (from: number, to: number) => boolean,
): boolean {
  const recordsBlocksEnd = Math.ceil(off / space.block) * space.block;
  if (space.allocated <= recordsBlocksEnd) {
    const blockEnd = Math.min(size, recordsBlocksEnd);
    return blockEnd <= off || zeroRange(off, blockEnd);
  }
  return zerosFrom(file, off, size);
}

function readRecords(path: string, file: Deno.FsFile, size: number, space: FileSpace, checkZeros: boolean): Uint8Array {
  // what the file holds (a sparse segment's blocks are about its records): mapped, or read into a buffer that size
  const held = Math.min(size, Math.max(space.allocated, CHUNK));
  const mapped = mapFile(path, 0, Math.min(size, Math.ceil(held / MAP_ALIGN) * MAP_ALIGN));
  let buf = mapped ?? new Uint8Array(held);
  let loaded = mapped?.length ?? 0;
  // loads the file up to byte `end` (capped at its size); false when the file is shorter
  const load = (end: number): boolean => {
    if (end > size || (mapped !== undefined && end > mapped.length)) return false;
    if (end > buf.length) {
      const next = new Uint8Array(Math.min(size, Math.max(end, buf.length * 2)));
      next.set(buf.subarray(0, loaded));
      buf = next;
    }
    while (loaded < end) {
      file.seekSync(loaded, Deno.SeekMode.Start);
      const n = file.readSync(buf.subarray(loaded, Math.min(buf.length, loaded + CHUNK)));
      if (n === null) return false;
      loaded += n;
    }
    return true;
  };
  let off = 0;
  for (;;) {
    if (off === size) return buf.subarray(0, off);
    if (!load(off + FRAME_BYTES)) break;
    if (isZeroFrame(buf, off)) {
      if (!checkZeros || zerosFollow(file, off, size, space, (from, to) => load(to) && isZero(buf, from, to))) {
        return buf.subarray(0, off);
      }
      break;
    }
    const frame = readFrame(buf, off);
    if (frame < 0 || Math.floor(frame / 8) > MAX_RECORD_BYTES) break;
    const next = off + FRAME_BYTES + Math.floor(frame / 8) + (frame % 8);
    if (!load(next)) break;
    off = next;
  }
  return mapped?.length === size ? mapped : readWholeSync(file);
}

/** Whether the file holds only zeros from `from` to `end`, read a chunk at a time. */
function zerosFrom(file: Deno.FsFile, from: number, end: number): boolean {
  const chunk = new Uint8Array(Math.min(CHUNK, end - from));
  for (let pos = from; pos < end;) {
    file.seekSync(pos, Deno.SeekMode.Start);
    const n = file.readSync(chunk.subarray(0, Math.min(chunk.length, end - pos)));
    if (n === null) return false;
    if (!isZero(chunk, 0, n)) return false;
    pos += n;
  }
  return true;
}

// etcd's watch guarantees, as its robustness tests check them, for watchers that resumed across faults: ordered
// (revisions only go up), unique (no event twice), atomic (a revision's events in one response), resumable and
// reliable (from its start revision a watcher sees exactly the store's history, gaps only where a compaction canceled
// it, and a cancel says why), and every acknowledged write is in that history at the revision it was answered with.
import { acknowledgedWrites, type Operation } from "./history.ts";
import type { StoreEvent, WatchResponse } from "./watcher.ts";

export interface WatchRecord {
  name: string;
  startRevision: number;
  responses: WatchResponse[];
}

const show = (e: StoreEvent | undefined) =>
  e === undefined ? "nothing" : `${e.type} ${e.key}=${e.value}@${e.modRevision}`;

/** The problems of one watcher against the store's history of its keys (`reference`, from revision 1). */
export function checkWatcher(w: WatchRecord, reference: StoreEvent[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  let last = 0;
  /** where in `reference` the watcher should be */
  let at = reference.findIndex((e) => e.modRevision >= w.startRevision);
  if (at < 0) at = reference.length;
  for (const [i, r] of w.responses.entries()) {
    const revsHere = new Set<number>();
    for (const e of r.events) {
      const id = `${e.modRevision}/${e.key}`;
      if (seen.has(id)) problems.push(`${w.name}: response ${i} repeats ${show(e)} (not unique)`);
      seen.add(id);
      if (e.modRevision < last) problems.push(`${w.name}: response ${i} goes back to ${e.modRevision} after ${last}`);
      if (e.modRevision === last && !revsHere.has(last)) {
        problems.push(`${w.name}: revision ${last} split across responses (not atomic)`);
      }
      revsHere.add(e.modRevision);
      last = Math.max(last, e.modRevision);
      const want = reference[at];
      if (
        want === undefined || want.modRevision !== e.modRevision || want.key !== e.key || want.type !== e.type ||
        want.value !== e.value
      ) {
        problems.push(`${w.name}: response ${i} has ${show(e)} where the store's history has ${show(want)}`);
        return problems; // out of step: what follows would only repeat it
      }
      at++;
    }
    if (r.canceled) {
      if (r.compactRevision === undefined && !r.cancelReason) {
        problems.push(`${w.name}: response ${i} canceled the watch without a reason`);
      }
      if (r.compactRevision !== undefined) {
        // compacted: the history up to the compaction is gone for it, and it resumes there
        while (at < reference.length && reference[at].modRevision < r.compactRevision) at++;
      }
    }
  }
  return problems;
}

/** Acknowledged writes missing from the store's history at the revision they were answered with. */
export function writesMissingFromHistory(ops: Operation[], reference: StoreEvent[]): Operation[] {
  const byRevKey = new Map(reference.map((e) => [`${e.modRevision}/${e.key}`, e]));
  return acknowledgedWrites(ops).filter((op) => {
    const e = byRevKey.get(`${op.revision}/${op.key}`);
    return e === undefined || e.type !== "PUT" || e.value !== op.input.value;
  });
}

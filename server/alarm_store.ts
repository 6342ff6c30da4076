// The member's alarms (etcd's v3alarm.AlarmStore): which member raised which alarm, kept in memory and persisted in
// the backend's alarm bucket as etcd keeps them (key: the marshaled AlarmMember, empty value), so a raised alarm
// survives a restart. Only the apply loop changes it, so every member holds the same set.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type AlarmMember, AlarmMemberSchema, AlarmType } from "../rpc/gen/etcdserverpb/rpc_pb.ts";
import { type Backend, BUCKET } from "../mvcc/backend.ts";
import { EMPTY_BYTES } from "../mvcc/bytes.ts";

export class AlarmStore {
  readonly #byType = new Map<AlarmType, Map<bigint, AlarmMember>>();

  constructor(private backend: Backend) {
    this.recover(backend);
  }

  /** Loads the alarms of `backend` in place of those held (a backend received with a leader's snapshot too). */
  recover(backend: Backend): void {
    this.backend = backend;
    this.#byType.clear();
    backend.forEach(BUCKET.alarm, (key) => {
      this.#add(fromBinary(AlarmMemberSchema, key));
    });
  }

  /** Raises `type` for `memberId`; returns the alarm (the one already raised, if any). */
  activate(memberId: bigint, type: AlarmType): AlarmMember {
    const m = create(AlarmMemberSchema, { memberID: memberId, alarm: type });
    const held = this.#add(m);
    if (held === m) this.backend.put(BUCKET.alarm, toBinary(AlarmMemberSchema, m), EMPTY_BYTES);
    return held;
  }

  /** Clears `type` for `memberId`; returns the cleared alarm, undefined when it was not raised. */
  deactivate(memberId: bigint, type: AlarmType): AlarmMember | undefined {
    const members = this.#byType.get(type);
    const m = members?.get(memberId);
    if (m === undefined) return undefined;
    members!.delete(memberId);
    this.backend.delete(BUCKET.alarm, toBinary(AlarmMemberSchema, m));
    return m;
  }

  /** The raised alarms of `type`, or all of them for NONE, by type then member. */
  get(type: AlarmType): AlarmMember[] {
    const types = type === AlarmType.NONE ? [...this.#byType.keys()].sort((a, b) => a - b) : [type];
    const out: AlarmMember[] = [];
    for (const t of types) {
      const members = this.#byType.get(t);
      if (members === undefined) continue;
      out.push(...[...members.values()].sort((a, b) => (a.memberID < b.memberID ? -1 : 1)));
    }
    return out;
  }

  has(type: AlarmType): boolean {
    return (this.#byType.get(type)?.size ?? 0) > 0;
  }

  #add(m: AlarmMember): AlarmMember {
    let members = this.#byType.get(m.alarm);
    if (members === undefined) this.#byType.set(m.alarm, members = new Map());
    const held = members.get(m.memberID);
    if (held !== undefined) return held;
    members.set(m.memberID, m);
    return m;
  }
}

/** An alarm as etcd prints it (gogo-protobuf's compact text: non-zero fields, each followed by a space). */
export function alarmString(m: AlarmMember): string {
  return (m.memberID !== 0n ? `memberID:${m.memberID} ` : "") +
    (m.alarm !== AlarmType.NONE ? `alarm:${AlarmType[m.alarm]} ` : "");
}

// The structured log callback the WAL and snapshotter report through (torn-tail repairs,
// new segments, slow syncs, broken snapshots); the server adapts it to its own logger.

export type WalLogger = (level: "info" | "warn", msg: string, fields?: Record<string, unknown>) => void;

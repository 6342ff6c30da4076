// The logging the transport needs; the server passes its own logger, tests pass nothing.
export interface RpcLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
}

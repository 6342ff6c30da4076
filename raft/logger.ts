// Logging hook. The library never writes anywhere itself; the default discards.

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

function discard(_msg: string): void {}

export const discardLogger: Logger = { debug: discard, info: discard, warn: discard, error: discard };

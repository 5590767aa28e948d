/**
 * Every error this program raises on purpose carries a stable `code`, so the
 * CLI can map it to an exit status in one place and tests can match on it.
 * Messages are written for the person at the studio: what happened, to which
 * file, and what to do next.
 */
export class CryomixWatchError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad configuration: the CLI exits 78 (EX_CONFIG) so systemd does not restart-loop. */
export class ConfigError extends CryomixWatchError {
  readonly keyPath: string;

  constructor(keyPath: string, problem: string) {
    super('CONFIG_INVALID', keyPath ? `config: ${keyPath}: ${problem}` : `config: ${problem}`);
    this.keyPath = keyPath;
  }
}

/** Worth retrying later: network failure, timeout, 5xx, 408, 429, or a stalled transfer. */
export class TransientError extends CryomixWatchError {
  /** From `Retry-After`, when the server sent one. */
  readonly retryAfterMs: number | undefined;
  readonly statusCode: number | undefined;

  constructor(message: string, options: { retryAfterMs?: number; statusCode?: number; cause?: unknown } = {}) {
    super('TRANSIENT', message, { cause: options.cause });
    this.retryAfterMs = options.retryAfterMs;
    this.statusCode = options.statusCode;
  }
}

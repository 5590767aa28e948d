import { CryomixWatchError } from '../errors.js';
import { isLoopbackHost } from '../net/loopback.js';
import type { SandboxOptions } from './types.js';

export class SandboxOptionError extends CryomixWatchError {
  constructor(message: string) {
    super('SANDBOX_INVALID_OPTION', message);
  }
}

/** Validated once here, naming the option, what it must be and what it was. */
export function resolveOptions(options: SandboxOptions): Required<SandboxOptions> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) {
    throw new SandboxOptionError(
      `sandbox: refusing to listen on \`${host}\`: it answers anyone with no real authentication, ` +
        'so it only listens on loopback (127.0.0.1, ::1 or localhost)',
    );
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SandboxOptionError(`sandbox: expected \`port\` to be an integer from 0 to 65535, got \`${port}\``);
  }
  const apiKey = options.apiKey ?? 'sandbox-key';
  if (apiKey === '') throw new SandboxOptionError('sandbox: expected `apiKey` to be a non-empty string');
  const masteringSeconds = options.masteringSeconds ?? 4;
  if (!Number.isFinite(masteringSeconds) || masteringSeconds < 0) {
    throw new SandboxOptionError(
      `sandbox: expected \`masteringSeconds\` to be a number from 0 and up, got \`${masteringSeconds}\``,
    );
  }
  return { host, port, apiKey, masteringSeconds };
}

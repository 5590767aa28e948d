import { ConfigError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
/** EX_CONFIG: systemd's RestartPreventExitStatus=78 stops a restart loop on a bad config. */
export const EXIT_CONFIG = 78;

/** The one place errors become exit statuses and a line on stderr. */
export function reportFatal(error: unknown): number {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    return EXIT_CONFIG;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`cryomix-watch: ${message}\n`);
  return EXIT_FAILURE;
}

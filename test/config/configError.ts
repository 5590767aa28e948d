import { ConfigError } from '../../src/errors.js';

/** The one line the CLI would print; fails the test if anything else is thrown. */
export function configErrorOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

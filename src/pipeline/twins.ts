import { CryomixWatchError } from '../errors.js';
import { readHead } from '../transfer/hash.js';

/** How long a file waits for an upload that may carry its very bytes. */
export const TWIN_WAIT_MS = 2_000;

/**
 * Another file of the same folder and size, with the same beginning, is
 * being uploaded: it is probably the same bytes. Waiting for it lets the
 * sha256 dedupe answer, instead of sending the bytes twice.
 */
export class TwinInFlightError extends CryomixWatchError {
  constructor(path: string, twin: string) {
    super('TWIN_IN_FLIGHT', `waiting for ${twin} to finish uploading: ${path} may be the same bytes`);
  }
}

export async function sameBeginning(a: string, b: string): Promise<boolean> {
  // A file that cannot be read now is no twin: its own upload attempt reports why.
  const [first, second] = await Promise.all([readHead(a).catch(() => null), readHead(b).catch(() => null)]);
  return first !== null && second !== null && first.equals(second);
}

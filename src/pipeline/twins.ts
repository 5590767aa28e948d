import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { CryomixWatchError } from '../errors.js';

/** Copies and hard links start alike; two different mixes of equal length almost never share their first 64 KiB. */
const PREFIX_BYTES = 64 * 1024;

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
  const [first, second] = await Promise.all([prefix(a), prefix(b)]);
  return first !== null && second !== null && first.equals(second);
}

async function prefix(path: string): Promise<Buffer | null> {
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
  if (!file) return null;
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(PREFIX_BYTES), 0, PREFIX_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

/** SHA-256 of a file, streamed; used before an upload only when a duplicate is possible. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  // Never through a symlink: a file swapped for a link after it settled must not be read.
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  const hash = createHash('sha256');
  await pipeline(file.createReadStream(), hash, { signal });
  return hash.digest('hex');
}

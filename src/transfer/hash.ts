import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

/** How much of a file's beginning tells equal-length files apart: copies start alike, different mixes almost never do. */
export const HEAD_BYTES = 64 * 1024;

/** SHA-256 of a file, streamed; used before an upload only when a duplicate is possible. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  // Never through a symlink: a file swapped for a link after it settled must not be read.
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  const hash = createHash('sha256');
  await pipeline(file.createReadStream(), hash, { signal });
  return hash.digest('hex');
}

/** The first HEAD_BYTES of a file, or all of a shorter one. */
export async function readHead(path: string): Promise<Buffer> {
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const head = Buffer.allocUnsafe(HEAD_BYTES);
    let filled = 0;
    // A read may return less than asked before the end (FUSE with direct_io, some network file systems).
    while (filled < HEAD_BYTES) {
      const { bytesRead } = await file.read(head, filled, HEAD_BYTES - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return head.subarray(0, filled);
  } finally {
    await file.close();
  }
}

export const sha256Hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

import { directly, type FileOperations } from '../files/folderGate.js';
import type { Job } from '../store/job.js';
import type { JobStore } from '../store/store.js';
import { inspectFile } from '../watch/sniff.js';
import type { FileStat } from '../watch/settle.js';

export interface SizeLimits {
  minBytes: number;
  maxBytes: number;
}

type Refusal = { outcome: 'rejected'; reason: string } | { outcome: 'incomplete'; reason: string };
/** `taken`: the row left `waiting` while the file was looked at: another process (the daemon, `upload FILE`) admitted it first. */
export type Admission = { outcome: 'queued' } | { outcome: 'taken' } | Refusal;

/**
 * Decides whether a settled, waiting file version may be uploaded, and files
 * the answer: `queued`, `rejected` with a reason that gives the numbers, or
 * still incomplete (left `waiting`, nothing written). Filed only while the
 * row is still waiting: the daemon and `upload FILE` may admit one file at
 * the same moment.
 */
export async function admit(store: JobStore, job: Job, fileStat: FileStat, limits: SizeLimits, run: FileOperations = directly): Promise<Admission> {
  // Content first: a DAW's placeholder header is small because it is unfinished, not because it is too small.
  const content = await run(() => contentRefusal(job.path, fileStat.size));
  if (content?.outcome === 'incomplete') return content;
  const refusal = sizeRefusal(fileStat.size, limits) ?? content;
  if (refusal) return (await store.transitionIf(job.id, 'waiting', 'rejected', () => ({ error: refusal.reason }))) ? refusal : { outcome: 'taken' };
  // A note from while it could not be read (permission denied) no longer holds.
  return (await store.transitionIf(job.id, 'waiting', 'queued', () => ({ error: null }))) ? { outcome: 'queued' } : { outcome: 'taken' };
}

function sizeRefusal(size: number, { minBytes, maxBytes }: SizeLimits): Refusal | undefined {
  if (size < minBytes) return { outcome: 'rejected', reason: `too small: ${size} bytes, the minimum is ${minBytes} (uploads.minBytes)` };
  if (size > maxBytes) return { outcome: 'rejected', reason: `too large: ${size} bytes, the maximum is ${maxBytes} (uploads.maxBytes)` };
  return undefined;
}

async function contentRefusal(path: string, size: number): Promise<Refusal | undefined> {
  const inspection = await inspectFile(path, size);
  switch (inspection.verdict) {
    case 'complete':
      return undefined;
    case 'invalid':
      return { outcome: 'rejected', reason: inspection.reason };
    case 'incomplete':
      return { outcome: 'incomplete', reason: inspection.reason };
  }
}

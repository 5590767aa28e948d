import type { Job } from '../store/job.js';
import type { JobStore } from '../store/jobs.js';
import { inspectFile } from '../watch/sniff.js';
import type { FileStat } from '../watch/settle.js';

export interface SizeLimits {
  minBytes: number;
  maxBytes: number;
}

type Refusal = { outcome: 'rejected'; reason: string } | { outcome: 'incomplete'; reason: string };
export type Admission = { outcome: 'queued' } | Refusal;

/**
 * Decides whether a settled, waiting file version may be uploaded, and files
 * the answer: `queued`, `rejected` with a reason that gives the numbers, or
 * still incomplete (left `waiting`, nothing written).
 */
export async function admit(store: JobStore, job: Job, fileStat: FileStat, limits: SizeLimits): Promise<Admission> {
  // Content first: a DAW's placeholder header is small because it is unfinished, not because it is too small.
  const content = await contentRefusal(job.path, fileStat.size);
  if (content?.outcome === 'incomplete') return content;
  const refusal = sizeRefusal(fileStat.size, limits) ?? content;
  if (refusal) {
    store.transition(job.id, 'rejected', { error: refusal.reason });
    return refusal;
  }
  store.transition(job.id, 'queued');
  return { outcome: 'queued' };
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

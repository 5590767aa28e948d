import { isPlainFileName } from '../transfer/fileName.js';
import type { MasteringProgress, MasteringStatus, SignedDownload } from './api.js';
import { MalformedAnswer, objectField, stringField, type JsonObject } from './envelope.js';
import { UnsafeUrlError } from './errors.js';
import { validateSignedUrl } from './signedUrl.js';

/**
 * Readers for the `data` of the mastering and download answers. They throw
 * MalformedAnswer for an answer that does not say what the documentation
 * promises, and UnsafeUrlError for one that must not be trusted.
 */

const MASTERING_STATUSES: readonly MasteringStatus[] = ['pending', 'processing', 'completed', 'failed', 'cancelled'];

export function readProgress(data: unknown): MasteringProgress {
  const status = stringField(data, 'status');
  if (!(MASTERING_STATUSES as readonly string[]).includes(status)) {
    throw new MalformedAnswer(`"status" is "${status.slice(0, 40)}", not a documented mastering status`);
  }
  const progress: MasteringProgress = { status: status as MasteringStatus, percentComplete: percentage(data) };
  if (status !== 'completed') return progress;
  const names = (data as JsonObject).processedObjectNames;
  // Only informative (the download answer names the files too), so an answer without the list is still usable.
  if (names === undefined || names === null) return progress;
  return { ...progress, processedObjectNames: listedNames(names) };
}

/**
 * `download_audio_urls`, each URL validated. The names
 * become file names in the studio's folder, so anything but a plain name
 * (a path, `..`) is refused along with the answer.
 */
export function readDownloadUrls(data: unknown, allowedOrigins: string[]): Map<string, SignedDownload> {
  const urls = objectField(data, 'download_audio_urls');
  const downloads = new Map<string, SignedDownload>();
  for (const [name, raw] of Object.entries(urls)) {
    if (!isPlainFileName(name)) {
      throw new UnsafeUrlError(`the API named a result ${JSON.stringify(name.slice(0, 80))}, which is not a plain file name`);
    }
    downloads.set(name, { url: validateSignedUrl(raw, allowedOrigins) });
  }
  return downloads;
}

/** Documented as 0-100; a numeric string is accepted because the type is not documented. */
function percentage(data: unknown): number {
  const raw = (data as JsonObject).percentage_complete;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new MalformedAnswer(`"percentage_complete" is ${raw === undefined ? 'missing' : typeof raw}, expected a number`);
  }
  return Math.min(100, Math.max(0, value));
}

/** Documented as an object keyed "0", "1"…; an array is read the same way. */
function listedNames(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) {
    throw new MalformedAnswer(`"processedObjectNames" is ${typeof value}, expected an object of file names`);
  }
  const names = Object.values(value as JsonObject);
  if (!names.every((name): name is string => typeof name === 'string' && name !== '')) {
    throw new MalformedAnswer('"processedObjectNames" holds something other than file names');
  }
  return names;
}

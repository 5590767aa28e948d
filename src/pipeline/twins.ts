import { CryomixWatchError } from '../errors.js';

/**
 * Another file of the same folder, size and beginning is being uploaded: it
 * is probably the same bytes. Waiting for it lets the sha256 dedupe answer,
 * instead of sending the bytes twice (JobStore.reserveUpload decides).
 */
export class TwinInFlightError extends CryomixWatchError {
  constructor(path: string, twin: string) {
    super('TWIN_IN_FLIGHT', `waiting for ${twin} to finish uploading: ${path} may be the same bytes`);
  }
}

import { randomUUID } from 'node:crypto';
import type { CryomixApi } from './api.js';
import { UnauthorizedError } from './errors.js';

/**
 * Whether the API accepts the key. Any answer but 401 proves it: a made-up
 * Session-Id earns a 400, which is fine. Network trouble is thrown, since it
 * says nothing about the key.
 */
export async function keyAccepted(api: Pick<CryomixApi, 'masteringProgress'>): Promise<boolean> {
  try {
    await api.masteringProgress(randomUUID());
    return true;
  } catch (error) {
    if (error instanceof UnauthorizedError) return false;
    throw error;
  }
}

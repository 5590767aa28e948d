import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Throttle } from '../../src/transfer/throttle.js';
import { parseConfig } from '../../src/config/index.js';
import type { CryomixApi } from '../../src/cryomix/api.js';
import { createMasteringContext, createUploadContext, type UploadParts } from '../../src/pipeline/uploadContext.js';
import { openDatabase } from '../../src/store/db.js';
import { SqliteJobStore } from '../../src/store/jobs.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-context-');

describe('upload and mastering contexts', () => {
  it('read the upload settings at each use, so a reload applies them to the next attempt', () => {
    const uploads = (stall: number, initial: number) =>
      `folders: [{ path: /srv/in }]\nuploads: { stallTimeoutSeconds: ${stall}, retry: { initialDelaySeconds: ${initial}, maxDelaySeconds: 60 } }\n`;
    const parts: UploadParts = {
      config: parseConfig(uploads(30, 2), '/'),
      store: new SqliteJobStore(openDatabase(join(tempDir(), 'state.db'))),
      // Never called here: only settings are read.
      api: {} as CryomixApi,
      logger: pino({ level: 'silent' }),
    };
    const throttles = { uploads: new Throttle(), downloads: new Throttle() };
    const upload = createUploadContext(parts, { onStale: () => {}, onUnauthorized: () => {} }, throttles);
    const mastering = createMasteringContext(parts, upload, { plan: () => undefined, onUnauthorized: () => {} }, throttles);

    parts.config = parseConfig(uploads(90, 5), '/');
    expect(upload.stallTimeoutMs).toBe(90_000);
    expect(upload.backoff).toEqual({ initialDelayMs: 5_000, maxDelayMs: 60_000 });
    expect(mastering.stallTimeoutMs).toBe(90_000);
    expect(mastering.backoff).toEqual({ initialDelayMs: 5_000, maxDelayMs: 60_000 });
    expect(upload.concurrency).toBe(2);
  });
});

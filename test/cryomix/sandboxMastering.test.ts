import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CryomixClient } from '../../src/cryomix/client.js';
import { RejectedError, UnsafeUrlError } from '../../src/cryomix/errors.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { bytes, uploadObject } from '../sandbox/helpers.js';
import { sandboxClient } from './sandboxClient.js';

/** The client's mastering calls against the sandbox: both sides of the same contract. */

let sandbox: Sandbox;
let client: CryomixClient;

beforeAll(async () => {
  sandbox = await startSandbox({ masteringSeconds: 0.3 });
  client = sandboxClient(sandbox);
});

afterAll(async () => {
  await sandbox.close();
});

async function untilSettled(sessionId: string) {
  for (;;) {
    const progress = await client.masteringProgress(sessionId);
    if (progress === null || !['pending', 'processing'].includes(progress.status)) return progress;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('mastering through the client, against the sandbox', () => {
  it('starts, follows and completes a job, then gets a validated URL per result', async () => {
    await uploadObject(sandbox, 'c1', bytes(1000));
    await expect(client.masteringProgress('c1')).resolves.toBeNull();
    await client.startMastering('c1', { meq: 3 });
    await expect(client.startMastering('c1', {})).rejects.toBeInstanceOf(RejectedError);
    expect(await untilSettled('c1')).toEqual({
      status: 'completed',
      percentComplete: 100,
      processedObjectNames: ['FinalMaster.wav', 'FinalMaster.mp3', 'MasteringReport.json', 'OriginalMix.mp3'],
    });
    const urls = await client.requestDownloadUrls('c1', 120);
    expect([...urls.keys()].sort()).toEqual(['FinalMaster.mp3', 'FinalMaster.wav', 'MasteringReport.json', 'OriginalMix.mp3']);
    for (const { url } of urls.values()) {
      expect(url.href.startsWith(sandbox.storageOrigin)).toBe(true);
      expect(url.searchParams.get('X-Goog-Expires')).toBe('120');
    }
    expect(sandbox.requests().filter((r) => r.endpoint === 'mastering').map((r) => r.status)).toEqual([200, 400]);
  });

  it('reports a failed job, refuses downloads for it, and may start it again', async () => {
    await uploadObject(sandbox, 'c2', bytes(1000));
    sandbox.faults.add({ target: 'mastering', kind: 'job-failed' });
    await client.startMastering('c2', {});
    expect(await untilSettled('c2')).toMatchObject({ status: 'failed' });
    await expect(client.requestDownloadUrls('c2', 120)).rejects.toBeInstanceOf(RejectedError);
    await client.startMastering('c2', {});
    expect(await untilSettled('c2')).toMatchObject({ status: 'completed' });
  });

  it('refuses the start for a session with nothing uploaded', async () => {
    const error = await client.startMastering('nobody', {}).catch((reason: unknown) => reason);
    expect(error).toMatchObject({ statusCode: 400, apiMessage: 'Session-Id not found' });
  });

  it('refuses the sandbox’s URLs when they are not under uploadOrigins', async () => {
    await uploadObject(sandbox, 'c3', bytes(1000));
    await client.startMastering('c3', {});
    await untilSettled('c3');
    const strict = new CryomixClient({
      baseUrl: sandbox.url,
      apiKey: sandbox.apiKey,
      uploadOrigins: ['https://storage.googleapis.com'],
      requestTimeoutMs: 5_000,
    });
    await expect(strict.requestDownloadUrls('c3', 120)).rejects.toBeInstanceOf(UnsafeUrlError);
  });
});

import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { downloadFile, type DownloadRequest } from '../../src/transfer/download.js';
import { StorageError } from '../../src/transfer/errors.js';
import { startLocalServer, type LocalServer } from '../cryomix/localServer.js';
import { useTempDir } from '../helpers/tempDir.js';
import { SIGNED_QUERY, digests, storageXml } from './fixtures.js';

/** What storage can do to a GET that the sandbox does not: cut bodies, stalls, redirects. */

let storage: LocalServer;
let agent: Agent;
const tempDir = useTempDir('cryomix-download-');
const master = randomBytes(3 * 1024 * 1024 + 5);

beforeAll(async () => {
  storage = await startLocalServer();
});

beforeEach(() => {
  // A fresh pool per test: a hung request must not hold a connection the next test needs.
  agent = new Agent();
});

afterEach(async () => {
  await agent.destroy();
});

afterAll(async () => {
  await storage.close();
});

function request(directory: string, overrides: Partial<DownloadRequest> = {}): DownloadRequest {
  return {
    url: new URL(`${storage.origin}/bucket/processed/f/FinalMaster.wav?${SIGNED_QUERY}`),
    directory,
    fileName: 'FinalMaster.wav',
    partialTag: 'job-1',
    stallTimeoutMs: 5_000,
    dispatcher: agent,
    ...overrides,
  };
}

async function failure(download: DownloadRequest): Promise<Error> {
  const error = await downloadFile(download).then(
    () => {
      throw new Error('expected the download to fail');
    },
    (reason: unknown) => reason as Error,
  );
  expect(`${error.message}\n${error.stack ?? ''}`).not.toMatch(/X-Goog-Signature|5ecre7516a7ure/);
  return error;
}

/** Sends the headers for the whole master, then `sent` bytes of it, then `then`. */
function sendPart(sent: number, then: 'reset' | 'stall'): void {
  storage.handle((_request, response) => {
    response.writeHead(200, { 'content-type': 'audio/wav', 'content-length': master.length });
    response.write(master.subarray(0, sent), () => {
      if (then === 'reset') response.socket?.destroy();
    });
  });
}

describe('bodies', () => {
  it('reads a body without Content-Length to its end', async () => {
    storage.handle((_request, response) => {
      response.writeHead(200, { 'content-type': 'audio/wav' });
      response.write(master.subarray(0, 1000));
      response.end(master.subarray(1000));
    });
    const directory = tempDir();
    const seen: Array<number | undefined> = [];
    const result = await downloadFile(request(directory, { onProgress: (_bytes, total) => seen.push(total) }));
    expect(result).toEqual({ path: join(directory, 'FinalMaster.wav'), bytes: master.length, sha256: digests(master).sha256 });
    expect((await readFile(result.path)).equals(master)).toBe(true);
    expect(new Set(seen)).toEqual(new Set([undefined]));
  });

  it('sends a plain GET: no body, no headers of its own', async () => {
    let seen: { method?: string; headerNames: string[] } | undefined;
    storage.handle((incoming, response) => {
      seen = { method: incoming.method, headerNames: incoming.rawHeaders.filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase()) };
      response.writeHead(200, { 'content-length': 4 }).end('RIFF');
    });
    await downloadFile(request(tempDir()));
    expect(seen?.method).toBe('GET');
    expect(seen?.headerNames.sort()).toEqual(['connection', 'host']);
  });

  it('reports a body shorter than Content-Length as a short download, and removes the .partial', async () => {
    sendPart(1024 * 1024, 'reset');
    const directory = tempDir();
    const error = await failure(request(directory));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/short download/);
    expect(error.message).toMatch(new RegExp(`of ${master.length} bytes`));
    expect(await readdir(directory)).toEqual([]);
  });

  it('maps a reset before any body to TransientError', async () => {
    storage.handle((incoming) => incoming.socket.destroy());
    const directory = tempDir();
    const error = await failure(request(directory));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.cause).toBeDefined();
    expect(await readdir(directory)).toEqual([]);
  });

  it('maps a refused connection to TransientError', async () => {
    const gone = await startLocalServer();
    await gone.close();
    const error = await failure(request(tempDir(), { url: new URL(`${gone.origin}/b/FinalMaster.wav?${SIGNED_QUERY}`) }));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/ECONNREFUSED/);
  });
});

describe('refusals', () => {
  it('reports 403 with storage’s code', async () => {
    storage.handle((_request, response) => {
      response.writeHead(403, { 'content-type': 'application/xml' }).end(storageXml('AccessDenied', 'Access denied.'));
    });
    const error = await failure(request(tempDir()));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ statusCode: 403, storageCode: 'AccessDenied', storageMessage: 'Access denied.' });
    expect(error.message).toBe('storage refused the download (403 AccessDenied): Access denied.');
  });

  it('reports 400 ExpiredToken with its code', async () => {
    storage.handle((_request, response) => response.writeHead(400).end(storageXml('ExpiredToken', 'Invalid argument.')));
    expect(await failure(request(tempDir()))).toMatchObject({ statusCode: 400, storageCode: 'ExpiredToken' });
  });

  it.each([408, 429, 500, 503])('maps %i to TransientError with Retry-After', async (status) => {
    storage.handle((_request, response) => {
      response.writeHead(status, { 'retry-after': '3' }).end(storageXml('SlowDown', 'Please reduce your request rate.'));
    });
    const error = await failure(request(tempDir()));
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ statusCode: status, retryAfterMs: 3_000 });
  });

  it('does not follow a redirect', async () => {
    const elsewhere = await startLocalServer((_request, response) => response.writeHead(200).end(master));
    try {
      storage.handle((_request, response) => {
        response.writeHead(307, { location: `${elsewhere.origin}/bucket/FinalMaster.wav?${SIGNED_QUERY}` }).end();
      });
      const directory = tempDir();
      const error = await failure(request(directory));
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ statusCode: 307, transfer: 'download' });
      expect(error.message).toMatch(/redirected the download to http:\/\/127\.0\.0\.1:\d+\/bucket\/FinalMaster\.wav\?<redacted>/);
      expect(elsewhere.connections()).toBe(0);
      expect(await readdir(directory)).toEqual([]);
    } finally {
      await elsewhere.close();
    }
  });
});

describe('stalls and shutdown', () => {
  it('gives up on a body that stops arriving, within about stallTimeoutMs, and removes the .partial', async () => {
    sendPart(256 * 1024, 'stall');
    const directory = tempDir();
    const started = Date.now();
    const error = await failure(request(directory, { stallTimeoutMs: 300 }));
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/download from http:\/\/127\.0\.0\.1:\d+\/bucket\/processed\/f\/FinalMaster\.wav\?<redacted> stalled/);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1_500);
    expect(await readdir(directory)).toEqual([]);
  });

  it('gives up on storage that never answers', async () => {
    storage.handle(() => undefined);
    const error = await failure(request(tempDir(), { stallTimeoutMs: 300 }));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/stalled: nothing moved for 300 ms/);
  });

  it('rejects promptly with the abort reason and removes the .partial', async () => {
    sendPart(256 * 1024, 'stall');
    const directory = tempDir();
    const shutdown = new AbortController();
    const reason = new Error('daemon stopping');
    const started = Date.now();
    const download = downloadFile(request(directory, { signal: shutdown.signal }));
    // Aborted once bytes are on disk, so there is a .partial to remove.
    await waitFor(async () => (await readdir(directory)).includes('FinalMaster.wav.job-1.partial'));
    shutdown.abort(reason);
    await expect(download).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await readdir(directory)).toEqual([]);
  });

  it('rejects with an AbortError, not a TransientError, when aborted without a reason', async () => {
    storage.handle(() => undefined);
    const shutdown = new AbortController();
    setTimeout(() => shutdown.abort(), 50);
    const error = await failure(request(tempDir(), { signal: shutdown.signal }));
    expect(error.name).toBe('AbortError');
    expect(error).not.toBeInstanceOf(TransientError);
  });

  it('does not start when already aborted', async () => {
    const before = storage.connections();
    const error = await failure(request(tempDir(), { signal: AbortSignal.abort() }));
    expect(error.name).toBe('AbortError');
    expect(storage.connections()).toBe(before);
  });
});

async function waitFor(probe: () => Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 2_000; Date.now() < deadline; ) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('timed out');
}

import { appendFile, truncate } from 'node:fs/promises';
import type { Agent } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { FileChangedError, StorageError } from '../../src/transfer/errors.js';
import { putFile, type PutRequest } from '../../src/transfer/put.js';
import { Throttle } from '../../src/transfer/throttle.js';
import { drainAllowanceMs } from '../../src/transfer/watchdog.js';
import { readBody, startLocalServer } from '../cryomix/localServer.js';
import { useLocalServer } from '../helpers/servers.js';
import { useSharedTempDir } from '../helpers/tempDir.js';
import { putRequestTo, storageAgent, SIGNED_QUERY, storageXml, writeRandomFile, type TestFile } from './fixtures.js';

const storage = useLocalServer();
const dir = useSharedTempDir('cryomix-put-');
let agent: Agent;
let mix: TestFile;

beforeEach(async () => {
  // A fresh pool per test: a hung request must not hold a connection the next test needs.
  agent = storageAgent();
  mix = await writeRandomFile(dir(), 'mix.wav', 2 * 1024 * 1024);
});

afterEach(() => {
  agent.destroy();
});

const putRequest = (overrides: Partial<PutRequest> = {}): PutRequest => putRequestTo(storage.origin, mix, agent, overrides);

async function failure(request: PutRequest): Promise<Error> {
  const error = await putFile(request).then(
    () => {
      throw new Error('expected the PUT to fail');
    },
    (reason: unknown) => reason as Error,
  );
  expect(`${error.message}\n${error.stack ?? ''}`).not.toMatch(/X-Goog-Signature|5ecre7516a7ure/);
  return error;
}

function answerAfterBody(status: number, body: string, headers: Record<string, string> = {}): void {
  storage.handle(async (request, response) => {
    await readBody(request);
    response.writeHead(status, { 'content-type': 'application/xml', ...headers }).end(body);
  });
}

describe('storage refusals', () => {
  it('reports 400 ExpiredToken as a StorageError with that code', async () => {
    answerAfterBody(400, storageXml('ExpiredToken', 'Invalid argument.'));
    const error = await failure(putRequest());
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ statusCode: 400, storageCode: 'ExpiredToken', storageMessage: 'Invalid argument.' });
    expect(error.message).toBe('storage refused the upload (400 ExpiredToken): Invalid argument.');
  });

  it('reports 403 SignatureDoesNotMatch, even when storage answers before reading the body', async () => {
    storage.handle((_request, response) => {
      response.writeHead(403, { 'content-type': 'application/xml' }).end(storageXml('SignatureDoesNotMatch', 'Access denied.'));
    });
    const error = await failure(putRequest());
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ statusCode: 403, storageCode: 'SignatureDoesNotMatch' });
  });

  it('reports a refusal at once while waiting for a low upload cap, giving up its turn', async () => {
    storage.handle((_request, response) => {
      response.writeHead(403, { 'content-type': 'application/xml' }).end(storageXml('SignatureDoesNotMatch', 'Access denied.'));
    });
    // 64 KiB at 1 kB/s: a minute per chunk, far beyond this test's time, if the refused PUT kept waiting for its turn.
    const throttle = new Throttle(1_000);
    const error = await failure(putRequest({ throttle }));
    expect(error).toMatchObject({ statusCode: 403 });
  });

  it('keeps a refusal without XML readable', async () => {
    answerAfterBody(404, '<html>not found</html>');
    const error = await failure(putRequest());
    expect(error).toMatchObject({ statusCode: 404, storageCode: undefined });
    expect(error.message).toBe('storage refused the upload (404): no details (HTTP 404)');
  });

  it('does not follow a redirect', async () => {
    const elsewhere = await startLocalServer((_request, response) => response.writeHead(200).end());
    try {
      storage.handle((_request, response) => {
        response.writeHead(307, { location: `${elsewhere.origin}/bucket/mix.wav?${SIGNED_QUERY}` }).end();
      });
      const error = await failure(putRequest());
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ statusCode: 307 });
      expect(error.message).toMatch(/redirect/);
      expect(elsewhere.connections()).toBe(0);
    } finally {
      await elsewhere.close();
    }
  });
});

describe('transient failures', () => {
  it('distrusts a 2xx that came before the whole body was sent', async () => {
    storage.handle((_request, response) => response.writeHead(200).end());
    const big = await writeRandomFile(dir(), 'early.wav', 32 * 1024 * 1024);
    const error = await failure(putRequest({ path: big.path, size: big.bytes.length }));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/storage answered 200 after \d+ of 33554432 bytes/);
  });

  it.each([408, 429, 500, 503])('maps %i to TransientError', async (status) => {
    answerAfterBody(status, storageXml('SlowDown', 'Please reduce your request rate.'), { 'retry-after': '3' });
    const error = await failure(putRequest());
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ statusCode: status, retryAfterMs: 3_000 });
    expect(error.message).toMatch(/SlowDown/);
  });

  it('gives up on a peer that stops reading, within about stallTimeoutMs', async () => {
    storage.handle((request) => request.pause());
    // Larger than the loopback socket buffers, so the stall comes mid-body.
    const big = await writeRandomFile(dir(), 'big.wav', 32 * 1024 * 1024);
    const started = Date.now();
    const error = await failure(putRequest({ path: big.path, size: big.bytes.length, stallTimeoutMs: 300 }));
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/stalled/);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1_500);
  });

  it('gives up on a peer that takes the body but never answers, allowing for the send buffer to drain', async () => {
    storage.handle((request) => void readBody(request));
    const small = await writeRandomFile(dir(), 'small.wav', 4 * 1024);
    const allowance = drainAllowanceMs(small.bytes.length);
    const started = Date.now();
    const error = await failure(putRequest({ path: small.path, size: small.bytes.length, stallTimeoutMs: 300 }));
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(`stalled: nothing moved for ${300 + allowance} ms`);
    expect(elapsed).toBeGreaterThanOrEqual(250 + allowance);
    expect(elapsed).toBeLessThan(1_500 + allowance);
  });

  it('maps a connection reset mid-body to TransientError', async () => {
    storage.handle((request) => request.once('data', () => request.socket.resetAndDestroy()));
    const error = await failure(putRequest());
    expect(error).toBeInstanceOf(TransientError);
    expect(error.cause).toBeDefined();
  });

  it('maps a refused connection to TransientError', async () => {
    const gone = await startLocalServer();
    await gone.close();
    const error = await failure(putRequest({ url: new URL(`${gone.origin}/bucket/mix.wav?${SIGNED_QUERY}`) }));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/ECONNREFUSED/);
  });
});

describe('shutdown', () => {
  it('rejects promptly with the abort reason, not a TransientError', async () => {
    storage.handle((request) => request.pause());
    const shutdown = new AbortController();
    const reason = new Error('daemon stopping');
    setTimeout(() => shutdown.abort(reason), 100);
    const started = Date.now();
    const error = await failure(putRequest({ signal: shutdown.signal }));
    expect(error).toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('rejects with an AbortError when aborted without a reason', async () => {
    storage.handle((request) => request.pause());
    const shutdown = new AbortController();
    setTimeout(() => shutdown.abort(), 50);
    const error = await failure(putRequest({ signal: shutdown.signal }));
    expect(error.name).toBe('AbortError');
    expect(error).not.toBeInstanceOf(TransientError);
  });

  it('does not start when already aborted', async () => {
    const before = storage.connections();
    const error = await failure(putRequest({ signal: AbortSignal.abort() }));
    expect(error.name).toBe('AbortError');
    expect(storage.connections()).toBe(before);
  });
});

describe('a file that is not the queued version', () => {
  it('refuses a file shorter than the queued size before sending', async () => {
    const before = storage.connections();
    const error = await failure(putRequest({ size: mix.bytes.length + 10 }));
    expect(error).toBeInstanceOf(FileChangedError);
    expect(error).toMatchObject({ code: 'FILE_CHANGED', path: mix.path });
    expect(storage.connections()).toBe(before);
  });

  it('refuses a file that disappeared', async () => {
    const error = await failure(putRequest({ path: `${mix.path}.gone` }));
    expect(error).toBeInstanceOf(FileChangedError);
  });

  it.each([
    // What was read ahead before the file shrank counts too: it yields at least the new size, never the queued one.
    ['shrinks', (path: string) => truncate(path, 1024 * 1024), /yielded \d+ bytes, expected 33554432/],
    ['grows', (path: string) => appendFile(path, Buffer.alloc(64 * 1024 * 1024)), /grew beyond/],
  ])('aborts when the file %s during the upload', async (_name, change, why) => {
    const big = await writeRandomFile(dir(), 'changing.wav', 32 * 1024 * 1024);
    storage.handle((request) => {
      request.once('data', () => {
        request.pause();
        void change(big.path).then(() => request.resume());
      });
    });
    const error = await failure(putRequest({ path: big.path, size: big.bytes.length }));
    expect(error).toBeInstanceOf(FileChangedError);
    expect(error.message).toMatch(why);
  });
});

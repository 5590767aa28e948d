import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putFile, type PutRequest } from '../../src/transfer/put.js';
import { ChecksumMismatchError } from '../../src/transfer/errors.js';
import { readBody } from '../cryomix/localServer.js';
import { useLocalServer } from '../helpers/servers.js';
import { useSharedTempDir } from '../helpers/tempDir.js';
import { putRequestTo, storageAgent, SIGNED_QUERY, digests, googHash, writeRandomFile, type TestFile } from './fixtures.js';

const storage = useLocalServer();
const dir = useSharedTempDir('cryomix-put-');
const agent = storageAgent();
afterAll(() => agent.destroy());
let mix: TestFile;

beforeAll(async () => {
  mix = await writeRandomFile(dir(), 'mix.wav', 3 * 1024 * 1024 + 17);
});

/** What the dedupe compares first: the SHA-256 of the first 64 KiB sent. */
const headSha256 = (bytes: Buffer) => createHash('sha256').update(bytes.subarray(0, 64 * 1024)).digest('hex');

const putRequest = (overrides: Partial<PutRequest> = {}): PutRequest => putRequestTo(storage.origin, mix, agent, overrides);

describe('a successful PUT', () => {
  it('sends exactly Host, Connection, Content-Type and Content-Length, and the bytes on disk', async () => {
    let received: { method?: string; url?: string; headerNames: string[]; headers: Record<string, unknown>; body: Buffer } | undefined;
    storage.handle(async (request, response) => {
      const body = await readBody(request);
      const headerNames = request.rawHeaders.filter((_value, index) => index % 2 === 0).map((name) => name.toLowerCase());
      received = { method: request.method, url: request.url, headerNames, headers: request.headers, body };
      response.writeHead(200, { 'x-goog-hash': googHash(body) }).end();
    });

    const result = await putFile(putRequest());

    expect(received?.method).toBe('PUT');
    expect(received?.url).toBe(`/bucket/uploads/f/mix.wav?${SIGNED_QUERY}`);
    expect(received?.headerNames.sort()).toEqual(['connection', 'content-length', 'content-type', 'host']);
    expect(received?.headers['content-type']).toBe('audio/wav');
    expect(received?.headers['content-length']).toBe(String(mix.bytes.length));
    expect(received?.body.equals(mix.bytes)).toBe(true);
    expect(result).toEqual({ bytes: mix.bytes.length, sha256: mix.sha256, md5: mix.md5, headSha256: headSha256(mix.bytes) });
  });

  it('accepts md5 in one of several x-goog-hash headers', async () => {
    storage.handle(async (request, response) => {
      const body = await readBody(request);
      response.setHeader('x-goog-hash', ['crc32c=AAAAAA==', `md5=${digests(body).md5}`]);
      response.writeHead(200).end();
    });
    await expect(putFile(putRequest())).resolves.toMatchObject({ md5: mix.md5 });
  });

  it('accepts an answer without md5 (composite objects carry none)', async () => {
    storage.handle(async (request, response) => {
      await readBody(request);
      response.writeHead(200, { 'x-goog-hash': 'crc32c=AAAAAA==' }).end();
    });
    await expect(putFile(putRequest())).resolves.toMatchObject({ sha256: mix.sha256 });
  });

  it('rejects with ChecksumMismatchError when storage reports another md5', async () => {
    storage.handle(async (request, response) => {
      const body = await readBody(request);
      body[0] = (body[0] ?? 0) ^ 0xff;
      response.writeHead(200, { 'x-goog-hash': googHash(body) }).end();
    });
    const error = await putFile(putRequest()).catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect(error).toMatchObject({ code: 'CHECKSUM_MISMATCH', expectedMd5: mix.md5 });
  });

  /** Storage reads slowly, so the transfer spans several progress intervals. */
  function readSlowly(): void {
    storage.handle((request, response) => {
      request.on('data', () => {
        request.pause();
        setTimeout(() => request.resume(), 10);
      });
      request.on('end', () => response.writeHead(200).end());
    });
  }

  it('sends the bytes on disk to a slow reader, though it reuses its read buffers many times over', async () => {
    let received: Buffer | undefined;
    storage.handle(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) {
        chunks.push(chunk as Buffer);
        // Pausing after every chunk keeps the socket full, so writes complete late and buffers wait for them.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      received = Buffer.concat(chunks);
      response.writeHead(200, { 'x-goog-hash': googHash(received) }).end();
    });
    const result = await putFile(putRequest());
    expect(received?.equals(mix.bytes)).toBe(true);
    expect(result).toEqual({ bytes: mix.bytes.length, sha256: mix.sha256, md5: mix.md5, headSha256: headSha256(mix.bytes) });
  });

  it('keeps the connection for the next PUT', async () => {
    storage.handle(async (request, response) => {
      const body = await readBody(request);
      response.writeHead(200, { 'x-goog-hash': googHash(body) }).end();
    });
    await putFile(putRequest());
    const before = storage.connections();
    await putFile(putRequest());
    expect(storage.connections()).toBe(before);
  });

  it('fails with what recording progress threw, instead of crashing the process from a timer', async () => {
    readSlowly();
    const broken = new Error('SQLITE_IOERR: disk I/O error');
    const error = await putFile(putRequest({ stallTimeoutMs: 300, onProgress: () => { throw broken; } })).catch((reason: unknown) => reason);
    expect(error).toBe(broken);
  });

  it('reports progress throttled, never before the first interval, and a slow transfer that keeps moving never stalls', async () => {
    readSlowly();
    const calls: { at: number; bytes: number }[] = [];
    const started = Date.now();
    const result = await putFile(putRequest({ stallTimeoutMs: 300, onProgress: (bytes) => void calls.push({ at: Date.now() - started, bytes }) }));
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThan(300);
    expect(result.bytes).toBe(mix.bytes.length);
    expect(calls.length).toBeGreaterThan(0);
    // Each report may be a commit to the state DB: none in the first interval, one per interval at most.
    expect(calls[0]!.at).toBeGreaterThanOrEqual(240);
    expect(calls.length).toBeLessThanOrEqual(Math.floor(elapsed / 250));
    const bytes = calls.map((call) => call.bytes);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(bytes.at(-1)).toBeLessThanOrEqual(mix.bytes.length);
  });
});

describe('memory', () => {
  it('stays flat while sending a large file', async () => {
    const size = 128 * 1024 * 1024;
    const path = join(dir(), 'large.wav');
    // A sparse file: no disk space, real reads.
    const handle = await open(path, 'w');
    await handle.truncate(size);
    await handle.close();
    storage.handle((request, response) => {
      const md5 = createHash('md5');
      request.on('data', (chunk: Buffer) => md5.update(chunk));
      request.on('end', () => response.writeHead(200, { 'x-goog-hash': `md5=${md5.digest('base64')}` }).end());
    });
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    try {
      const result = await putFile(putRequest({ path, size }));
      expect(result.bytes).toBe(size);
    } finally {
      clearInterval(sampler);
    }
    expect(peak - baseline).toBeLessThan(size / 2);
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { TransientError } from '../../src/errors.js';
import { HashProtocolError } from '../../src/transfer/errors.js';
import type { HashSpec } from '../../src/transfer/hashProtocol.js';
import { HashThread, type HashStream } from '../../src/transfer/hashThread.js';
import { crashHashThread } from './fixtures.js';

const thread = new HashThread();
afterAll(() => thread.terminate());

const SHA256_AND_MD5: HashSpec[] = [
  { algorithm: 'sha256', encoding: 'hex' },
  { algorithm: 'md5', encoding: 'base64' },
  { algorithm: 'sha256', encoding: 'hex', firstBytes: 1000 },
];

const memory = (bytes: number) => new SharedArrayBuffer(bytes);

/** Copies `bytes` into the stream's memory `chunk` at a time, reusing the memory only once each chunk is hashed. */
async function hashThrough(stream: HashStream, bytes: Buffer, chunk: number): Promise<string[]> {
  const view = Buffer.from(stream.memory);
  for (let start = 0; start < bytes.length; start += chunk) {
    const part = bytes.subarray(start, start + chunk);
    part.copy(view);
    await new Promise<void>((hashed) => stream.update(0, part.length, hashed));
  }
  stream.finish();
  return stream.digests();
}

function expected(bytes: Buffer): string[] {
  return [
    createHash('sha256').update(bytes).digest('hex'),
    createHash('md5').update(bytes).digest('base64'),
    createHash('sha256').update(bytes.subarray(0, 1000)).digest('hex'),
  ];
}

describe('a hash stream', () => {
  it('hashes in memory a closed stream had, without the closed stream\'s leftovers', async () => {
    const shared = memory(2048);
    const abandoned = thread.open(shared, SHA256_AND_MD5);
    Buffer.from(shared).fill(7);
    abandoned.update(0, 2048, () => undefined);
    abandoned.close();
    const bytes = randomBytes(5000);
    const next = thread.open(shared, SHA256_AND_MD5);
    try {
      expect(await hashThrough(next, bytes, 2048)).toEqual(expected(bytes));
    } finally {
      next.close();
    }
  });

  it('hashes the ranges it is given, in order, as node:crypto hashes the whole', async () => {
    const bytes = randomBytes(10_000);
    const stream = thread.open(memory(777), SHA256_AND_MD5);
    try {
      expect(await hashThrough(stream, bytes, 777)).toEqual(expected(bytes));
    } finally {
      stream.close();
    }
  });

  it('keeps streams of one thread apart, however their updates interleave', async () => {
    const inputs = [randomBytes(50_000), randomBytes(33_333), randomBytes(0)];
    const streams = inputs.map(() => thread.open(memory(4096), SHA256_AND_MD5));
    try {
      const digests = await Promise.all(inputs.map((bytes, index) => hashThrough(streams[index]!, bytes, 4096)));
      expect(digests).toEqual(inputs.map(expected));
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it('gives its digests to every caller that waits for them', async () => {
    const bytes = randomBytes(3000);
    const stream = thread.open(memory(4096), SHA256_AND_MD5);
    try {
      const early = stream.digests();
      const alsoEarly = stream.digests();
      const digests = await hashThrough(stream, bytes, 4096);
      expect(await early).toEqual(digests);
      expect(await alsoEarly).toEqual(digests);
      expect(await stream.digests()).toEqual(expected(bytes));
    } finally {
      stream.close();
    }
  });

  it('stops waiting for digests when the caller\'s signal aborts, and refuses waiters when it closes', async () => {
    const stream = thread.open(memory(1024), SHA256_AND_MD5);
    const caller = new AbortController();
    const reason = new Error('gave up');
    // finish() never comes: nothing but the signal and close() ends these waits.
    const aborted = stream.digests(caller.signal);
    const closed = stream.digests();
    caller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    stream.close();
    await expect(closed).rejects.toBeInstanceOf(HashProtocolError);
    await expect(stream.digests()).rejects.toBeInstanceOf(HashProtocolError);
  });
});

describe('the thread', () => {
  it('fails the streams it had with a TransientError when it dies, and the next stream gets a fresh thread', async () => {
    const own = new HashThread();
    const stream = own.open(memory(1024), SHA256_AND_MD5);
    const waiting = expect(stream.digests()).rejects.toBeInstanceOf(TransientError);
    await crashHashThread(own);
    expect(own.running).toBe(false);
    expect(stream.signal.reason).toBeInstanceOf(TransientError);
    expect(String(stream.signal.reason)).toMatch(/hashing thread stopped \(Digest method not supported\)/);
    await waiting;
    stream.finish();
    await expect(stream.digests()).rejects.toBeInstanceOf(TransientError);
    stream.close();

    const bytes = randomBytes(3000);
    const next = own.open(memory(1024), SHA256_AND_MD5);
    try {
      expect(own.running).toBe(true);
      expect(await hashThrough(next, bytes, 1024)).toEqual(expected(bytes));
    } finally {
      next.close();
      await own.terminate();
    }
  });

  it('keeps the digests of a stream that had them when the thread dies for another stream', async () => {
    const own = new HashThread();
    const bytes = randomBytes(3000);
    const done = own.open(memory(1024), SHA256_AND_MD5);
    try {
      const digests = await hashThrough(done, bytes, 1024);
      // Its PUT is still waiting for storage's answer, say, when another stream kills the thread.
      await crashHashThread(own);
      expect(done.signal.aborted).toBe(false);
      expect(await done.digests()).toEqual(digests);
    } finally {
      done.close();
      await own.terminate();
    }
  });

  describe('when idle', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('ends idleMs after its last stream closed, and not while one is open', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const own = new HashThread({ idleMs: 5_000 });
      expect(own.running).toBe(false);
      const first = own.open(memory(1024), SHA256_AND_MD5);
      const second = own.open(memory(1024), SHA256_AND_MD5);
      first.close();
      vi.advanceTimersByTime(60_000);
      expect(own.running).toBe(true);

      second.close();
      vi.advanceTimersByTime(4_999);
      expect(own.running).toBe(true);
      vi.advanceTimersByTime(1);
      expect(own.running).toBe(false);

      // A stream opened after the idle time starts the thread again, and closing it counts the idle time afresh.
      const bytes = randomBytes(2000);
      const again = own.open(memory(1024), SHA256_AND_MD5);
      expect(await hashThrough(again, bytes, 1024)).toEqual(expected(bytes));
      again.close();
      vi.advanceTimersByTime(4_999);
      expect(own.running).toBe(true);
      vi.advanceTimersByTime(1);
      expect(own.running).toBe(false);
    });

    it('is not ended under a later stream by the idle time a stream of a dead thread started when it closed', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const own = new HashThread({ idleMs: 5_000 });
      const old = own.open(memory(1024), SHA256_AND_MD5);
      await crashHashThread(own);
      // The fresh thread idles; then the dead thread's stream finally closes, and a later stream opens.
      own.open(memory(1024), SHA256_AND_MD5).close();
      old.close();
      const later = own.open(memory(1024), SHA256_AND_MD5);
      try {
        vi.advanceTimersByTime(60_000);
        expect(own.running).toBe(true);
        expect(later.signal.aborted).toBe(false);
        const bytes = randomBytes(2000);
        expect(await hashThrough(later, bytes, 1024)).toEqual(expected(bytes));
      } finally {
        later.close();
      }
      vi.advanceTimersByTime(5_000);
      expect(own.running).toBe(false);
    });
  });
});

import { createHash } from 'node:crypto';
import { chmod, chown, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignedDownload } from '../../src/cryomix/api.js';
import { TransientError } from '../../src/errors.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { downloadFile, type DownloadRequest } from '../../src/transfer/download.js';
import { StorageError } from '../../src/transfer/errors.js';
import { sendBinary } from '../sandbox/helpers.js';
import { useTempDir } from '../helpers/tempDir.js';
import { masteredSession, urlOf } from './mastered.js';

/** Downloads from the sandbox's storage, with URLs the client got from a real mastering run. */

let sandbox: Sandbox;
let urls: Map<string, SignedDownload>;
const tempDir = useTempDir('cryomix-download-');

beforeAll(async () => {
  sandbox = await startSandbox({ masteringSeconds: 0.3 });
  urls = await masteredSession(sandbox, 'session-download');
});

afterAll(async () => {
  await sandbox.close();
});

function request(name: string, directory: string, overrides: Partial<DownloadRequest> = {}): DownloadRequest {
  return { url: urlOf(urls, name), directory, fileName: name, partialTag: 'job-1', stallTimeoutMs: 5_000, ...overrides };
}

async function direct(name: string): Promise<Buffer> {
  const answer = await sendBinary(urlOf(urls, name).href);
  expect(answer.status).toBe(200);
  return answer.body;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => {
      throw new Error('expected the download to fail');
    },
    (reason: unknown) => reason as Error,
  );
  expect(`${error.message}\n${error.stack ?? ''}`).not.toMatch(/X-Goog-Signature/);
  return error;
}

/** A group no test user is in, standing for a studio's share group. */
const STUDIO_GID = 4242;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('downloading results', () => {
  it('writes each result byte for byte into new folders made like their parent, as 0644 files, leaving no .partial', async () => {
    const studio = tempDir();
    await chmod(studio, 0o2775);
    const directory = join(studio, 'masters', 'Final Mix v3');
    const seen: Array<[number, number | undefined]> = [];
    for (const name of ['FinalMaster.wav', 'MasteringReport.json']) {
      const expected = await direct(name);
      const result = await downloadFile(request(name, directory, { onProgress: (bytes, total) => seen.push([bytes, total]) }));
      expect(result).toEqual({ path: join(directory, name), bytes: expected.length, sha256: sha256(expected) });
      expect((await readFile(result.path)).equals(expected)).toBe(true);
      expect((await stat(result.path)).mode & 0o777).toBe(0o644);
      expect(seen.at(-1)).toEqual([expected.length, expected.length]);
    }
    expect((await readdir(directory)).sort()).toEqual(['FinalMaster.wav', 'MasteringReport.json']);
    expect((await stat(directory)).mode & 0o7777).toBe(0o2775);
    expect((await stat(join(directory, '..'))).mode & 0o7777).toBe(0o2775);
    const wav = await readFile(join(directory, 'FinalMaster.wav'));
    expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
    expect(JSON.parse(await readFile(join(directory, 'MasteringReport.json'), 'utf8'))).toMatchObject({
      sessionId: 'session-download',
      settings: { meq: 6, mca: -1 },
    });
  });

  it("adds ' (2)' when the name is taken, and leaves the user's file untouched", async () => {
    const directory = tempDir();
    const mine = Buffer.from('my own notes, not a master');
    await writeFile(join(directory, 'FinalMaster.wav'), mine);
    const result = await downloadFile(request('FinalMaster.wav', directory));
    expect(result.path).toBe(join(directory, 'FinalMaster (2).wav'));
    expect((await readFile(result.path)).equals(await direct('FinalMaster.wav'))).toBe(true);
    expect((await readFile(join(directory, 'FinalMaster.wav'))).equals(mine)).toBe(true);
    expect((await readdir(directory)).sort()).toEqual(['FinalMaster (2).wav', 'FinalMaster.wav']);
  });

  it('takes a file already at its name with the same bytes (placed before a crash, never recorded), and places beside one with other bytes', async () => {
    const directory = tempDir();
    const expected = await direct('FinalMaster.wav');
    await writeFile(join(directory, 'FinalMaster.wav'), 'an older master the engineer kept');
    await writeFile(join(directory, 'FinalMaster (2).wav'), expected);
    const result = await downloadFile(request('FinalMaster.wav', directory));
    expect(result.path).toBe(join(directory, 'FinalMaster (2).wav'));
    expect(result.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
    expect((await readdir(directory)).sort()).toEqual(['FinalMaster (2).wav', 'FinalMaster.wav']);
    expect(await readFile(join(directory, 'FinalMaster.wav'), 'utf8')).toBe('an older master the engineer kept');
  });

  it('replaces a stale .partial left by a crash', async () => {
    const directory = tempDir();
    await writeFile(join(directory, 'FinalMaster.wav.job-1.partial'), Buffer.alloc(1024 * 1024, 0xee));
    const result = await downloadFile(request('FinalMaster.wav', directory));
    expect(result.path).toBe(join(directory, 'FinalMaster.wav'));
    expect((await readFile(result.path)).equals(await direct('FinalMaster.wav'))).toBe(true);
    expect(await readdir(directory)).toEqual(['FinalMaster.wav']);
  });

  it('never writes through a stale .partial that is a link to another file', async () => {
    const directory = tempDir();
    const elsewhere = join(tempDir(), 'precious.txt');
    await writeFile(elsewhere, 'do not touch');
    await symlink(elsewhere, join(directory, 'FinalMaster.wav.job-1.partial'));
    await downloadFile(request('FinalMaster.wav', directory));
    expect(await readFile(elsewhere, 'utf8')).toBe('do not touch');
    expect(await readdir(directory)).toEqual(['FinalMaster.wav']);
  });

  it("makes folders and files readable by the studio whatever the umask: the parent's mode and group, 0644 files", async () => {
    // A strict umask, and a studio share: group-writable, setgid, the studio's group (any gid: the tests run as root).
    const studio = tempDir();
    await chown(studio, 0, STUDIO_GID);
    await chmod(studio, 0o2770);
    const directory = join(studio, 'masters', 'mix');
    const umask = process.umask(0o077);
    try {
      const result = await downloadFile(request('MasteringReport.json', directory));
      expect((await stat(result.path)).mode & 0o777).toBe(0o644);
      for (const made of [directory, join(directory, '..')]) {
        const { mode, gid } = await stat(made);
        expect({ mode: mode & 0o7777, gid }).toEqual({ mode: 0o2770, gid: STUDIO_GID });
      }
    } finally {
      process.umask(umask);
    }
  });

  it('refuses a file name with a path in it', async () => {
    const directory = tempDir();
    await expect(downloadFile(request('FinalMaster.wav', directory, { fileName: '../FinalMaster.wav' }))).rejects.toThrow(TypeError);
    expect(await readdir(directory)).toEqual([]);
  });
});

describe('storage refusals', () => {
  it('reports an expired URL as StorageError ExpiredToken, and removes the .partial', async () => {
    const directory = tempDir();
    await writeFile(join(directory, 'FinalMaster.wav.job-1.partial'), 'left by a crash');
    const expired = new URL(urlOf(urls, 'FinalMaster.wav'));
    expired.searchParams.set('X-Goog-Date', '20200101T000000Z');
    const error = await failure(downloadFile(request('FinalMaster.wav', directory, { url: expired })));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ statusCode: 400, storageCode: 'ExpiredToken', transfer: 'download' });
    expect(error.message).toMatch(/^storage refused the download \(400 ExpiredToken\)/);
    expect(await readdir(directory)).toEqual([]);
  });

  it('reports 403 as StorageError, so the caller asks for fresh URLs', async () => {
    const directory = tempDir();
    const tampered = new URL(urlOf(urls, 'FinalMaster.wav'));
    tampered.searchParams.set('X-Goog-Signature', '00'.repeat(32));
    const error = await failure(downloadFile(request('FinalMaster.wav', directory, { url: tampered })));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ statusCode: 403, storageCode: 'SignatureDoesNotMatch' });
    expect(await readdir(directory)).toEqual([]);
  });

  it('reports 503 with Retry-After as TransientError', async () => {
    const directory = tempDir();
    sandbox.faults.add({ target: 'get', kind: 'status', status: 503, retryAfterSeconds: 4 });
    const error = await failure(downloadFile(request('FinalMaster.wav', directory)));
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ statusCode: 503, retryAfterMs: 4_000 });
    expect(error.message).toMatch(/storage could not serve the download now \(503/);
    expect(await readdir(directory)).toEqual([]);
    await expect(downloadFile(request('FinalMaster.wav', directory))).resolves.toMatchObject({ path: join(directory, 'FinalMaster.wav') });
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { Crc32c } from '../../src/sandbox/crc32c.js';
import { bytes, callApi, md5Base64, send, sendBinary, uploadObject, xmlCode } from './helpers.js';

let sandbox: Sandbox;
beforeEach(async () => {
  sandbox = await startSandbox({ masteringSeconds: 0.5 });
});
afterEach(async () => {
  await sandbox.close();
});

interface Progress {
  status: string;
  percentage_complete: number;
  processedFolderName?: string;
  processedObjectNames?: Record<string, string>;
}

async function progress(sessionId: string): Promise<Progress> {
  const { status, envelope } = await callApi(sandbox, 'percentage', { sessionId });
  expect(status).toBe(200);
  return envelope.data as Progress;
}

/** Polls until the job leaves pending/processing; returns every answer seen. */
async function pollUntilDone(sessionId: string): Promise<Progress[]> {
  const seen = [await progress(sessionId)];
  while (['pending', 'processing'].includes(seen.at(-1)?.status ?? '')) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    seen.push(await progress(sessionId));
  }
  return seen;
}

async function downloadUrls(sessionId: string): Promise<Record<string, string>> {
  const body = { expiration_seconds: 60 };
  const { status, envelope } = await callApi(sandbox, 'multi-download', { sessionId, body });
  expect(status).toBe(200);
  return (envelope.data as { download_audio_urls: Record<string, string> }).download_audio_urls;
}

describe('mastering', () => {
  it('runs pending → processing → completed, then serves valid result files', async () => {
    await uploadObject(sandbox, 's1', bytes(5000));
    const started = await callApi(sandbox, 'mastering', { sessionId: 's1', body: { meq: 5, mca: 1 } });
    expect(started.status).toBe(200);
    expect(started.envelope).toEqual({
      data: null,
      message: 'Mastering started, please use percentage api to check the progress',
      status: 'success',
      code: 200,
    });

    const seen = await pollUntilDone('s1');
    const percentages = seen.map((p) => p.percentage_complete);
    expect(percentages).toEqual([...percentages].sort((a, b) => a - b));
    const midway = seen.filter((p) => p.status === 'processing' && p.percentage_complete > 0);
    expect(midway.length).toBeGreaterThan(0);
    expect(midway.every((p) => p.percentage_complete < 100)).toBe(true);
    const done = seen.at(-1);
    expect(done).toMatchObject({ status: 'completed', percentage_complete: 100 });
    expect(done?.processedObjectNames).toEqual({
      '0': 'FinalMaster.wav',
      '1': 'FinalMaster.mp3',
      '2': 'MasteringReport.json',
      '3': 'OriginalMix.mp3',
    });

    const urls = await downloadUrls('s1');
    expect(Object.keys(urls).sort()).toEqual([
      'FinalMaster.mp3',
      'FinalMaster.wav',
      'MasteringReport.json',
      'OriginalMix.mp3',
    ]);
    for (const url of Object.values(urls)) {
      expect(url.startsWith(sandbox.storageOrigin)).toBe(true);
      expect(url).toContain('X-Goog-SignedHeaders=host&');
    }

    const wav = await sendBinary(urls['FinalMaster.wav'] ?? '');
    expect(wav.status).toBe(200);
    expect(wav.headers['content-type']).toBe('audio/wav');
    expect(Number(wav.headers['content-length'])).toBe(wav.body.length);
    expect(wav.headers['x-goog-hash']).toEqual([
      `crc32c=${new Crc32c().update(wav.body).digestBase64()}`,
      `md5=${md5Base64(wav.body)}`,
    ]);
    expectValidWav(wav.body);

    for (const name of ['FinalMaster.mp3', 'OriginalMix.mp3']) {
      const mp3 = await sendBinary(urls[name] ?? '');
      expect(mp3.headers['content-type']).toBe('audio/mpeg');
      expectMpegFrames(mp3.body);
    }

    const report = await sendBinary(urls['MasteringReport.json'] ?? '');
    expect(JSON.parse(report.body.toString('utf8'))).toMatchObject({ sessionId: 's1', settings: { meq: 5, mca: 1 } });
    expect(sandbox.requests().filter((r) => r.endpoint === 'get')).toHaveLength(4);
    expect(sandbox.requests().at(-1)).toEqual({ endpoint: 'get', sessionId: 's1', status: 200 });
  });

  it('refuses to start without an uploaded object', async () => {
    const body = { object_names: ['a.wav'], content_type: 'audio/wav' };
    await callApi(sandbox, 'multi-upload', { sessionId: 's1', body });
    const { status, envelope } = await callApi(sandbox, 'mastering', { sessionId: 's1' });
    expect(status).toBe(400);
    expect(envelope.message).toBe('Session-Id not found');
  });

  it('refuses out-of-range settings', async () => {
    await uploadObject(sandbox, 's1', bytes(10));
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1', body: { meq: 11 } })).status).toBe(400);
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1', body: { mwa: -5.5 } })).status).toBe(400);
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1', body: { mca: '1' } })).status).toBe(400);
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1', body: { mwa: -5, meq: 10 } })).status).toBe(200);
  });

  it('refuses a second start while a job runs or after it completed', async () => {
    await uploadObject(sandbox, 's1', bytes(10));
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1' })).status).toBe(200);
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1' })).status).toBe(400);
    await pollUntilDone('s1');
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1' })).status).toBe(400);
  });

  it('reports a job-failed fault as failed, and allows a new start', async () => {
    await uploadObject(sandbox, 's1', bytes(10));
    sandbox.faults.add({ target: 'mastering', kind: 'job-failed' });
    await callApi(sandbox, 'mastering', { sessionId: 's1' });
    expect((await pollUntilDone('s1')).at(-1)?.status).toBe('failed');
    expect((await callApi(sandbox, 'multi-download', { sessionId: 's1' })).status).toBe(400);
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1' })).status).toBe(200);
    expect((await pollUntilDone('s1')).at(-1)?.status).toBe('completed');
  });

  it('keeps a stuck-pending job pending at 0% past its run time, refusing a new start and downloads', async () => {
    await uploadObject(sandbox, 's1', bytes(10));
    await uploadObject(sandbox, 's2', bytes(10));
    sandbox.faults.add({ target: 'mastering', kind: 'stuck-pending' });
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1' })).status).toBe(200);
    expect((await callApi(sandbox, 'mastering', { sessionId: 's2' })).status).toBe(200);
    // Twice the 0.5 s run: any other job has completed by now.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await progress('s1')).toEqual({ status: 'pending', percentage_complete: 0 });
    expect((await callApi(sandbox, 'mastering', { sessionId: 's1' })).status).toBe(400);
    expect((await callApi(sandbox, 'multi-download', { sessionId: 's1' })).status).toBe(400);
    // The fault was consumed by the first start only.
    expect(await progress('s2')).toMatchObject({ status: 'completed', percentage_complete: 100 });
  });

  it('accepts stuck-pending on mastering only, also through the control route', async () => {
    expect(() => sandbox.faults.add({ target: 'percentage', kind: 'stuck-pending' } as never)).toThrow(/invalid sandbox fault/);
    const answer = await send(`${sandbox.url}/_sandbox/faults`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ target: 'mastering', kind: 'stuck-pending', times: 2 }),
    });
    expect(answer.status).toBe(204);
  });

  it('answers percentage and multi-download 400 for an unknown session or an unfinished job', async () => {
    expect((await callApi(sandbox, 'percentage', { sessionId: 'nobody' })).envelope).toMatchObject({
      code: 400,
      message: 'Session-Id not found',
    });
    await uploadObject(sandbox, 's1', bytes(10));
    await callApi(sandbox, 'mastering', { sessionId: 's1' });
    expect((await callApi(sandbox, 'multi-download', { sessionId: 's1' })).status).toBe(400);
    await pollUntilDone('s1');
    const zeroLifetime = { expiration_seconds: 0 };
    expect((await callApi(sandbox, 'multi-download', { sessionId: 's1', body: zeroLifetime })).status).toBe(400);
  });

  it('refuses a tampered download URL and answers get faults', async () => {
    await uploadObject(sandbox, 's1', bytes(10));
    await callApi(sandbox, 'mastering', { sessionId: 's1' });
    await pollUntilDone('s1');
    const url = (await downloadUrls('s1'))['FinalMaster.wav'] ?? '';
    const tampered = await send(url.replace('X-Goog-Expires=60', 'X-Goog-Expires=61'), { method: 'GET' });
    expect([tampered.status, xmlCode(tampered.text)]).toEqual([403, 'SignatureDoesNotMatch']);
    const renamed = await send(url.replace('FinalMaster.wav', 'FinalMaster.flac'), { method: 'GET' });
    expect(renamed.status).toBe(403);
    const date = /X-Goog-Date=(\d{8}T\d{6}Z)/.exec(url)?.[1] ?? '';
    const expired = await send(url.replace(date, '20200101T000000Z'), { method: 'GET' });
    expect([expired.status, xmlCode(expired.text)]).toEqual([400, 'ExpiredToken']);
    sandbox.faults.add({ target: 'get', kind: 'status', status: 500 });
    expect((await send(url, { method: 'GET' })).status).toBe(500);
    const whole = await send(url, { method: 'GET' });
    expect(whole.status).toBe(200);
    // A stall that ends: the same body, late.
    sandbox.faults.add({ target: 'get', kind: 'stall', afterBytes: 10, forMs: 100 });
    expect(await send(url, { method: 'GET' })).toMatchObject({ status: 200, text: whole.text });
  });
});

function expectValidWav(wav: Buffer): void {
  expect(wav.toString('ascii', 0, 4)).toBe('RIFF');
  expect(wav.readUInt32LE(4)).toBe(wav.length - 8);
  expect(wav.toString('ascii', 8, 12)).toBe('WAVE');
  expect(wav.toString('ascii', 12, 16)).toBe('fmt ');
  const fmtSize = wav.readUInt32LE(16);
  const format = wav.readUInt16LE(20);
  const channels = wav.readUInt16LE(22);
  const rate = wav.readUInt32LE(24);
  const byteRate = wav.readUInt32LE(28);
  const blockAlign = wav.readUInt16LE(32);
  const bits = wav.readUInt16LE(34);
  expect({ fmtSize, format }).toEqual({ fmtSize: 16, format: 1 });
  expect(blockAlign).toBe((channels * bits) / 8);
  expect(byteRate).toBe(rate * blockAlign);
  expect(wav.toString('ascii', 36, 40)).toBe('data');
  const dataSize = wav.readUInt32LE(40);
  expect(dataSize).toBe(wav.length - 44);
  expect(dataSize % blockAlign).toBe(0);
  expect(dataSize / byteRate).toBeGreaterThanOrEqual(0.5);
  expect(wav.subarray(44).some((byte) => byte !== 0)).toBe(true);
}

/** Walks MPEG-1 Layer III frames by their headers: each must parse, and the stream ends on a frame boundary. */
function expectMpegFrames(mp3: Buffer): void {
  const bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
  const rates = [44100, 48000, 32000];
  let offset = 0;
  let frames = 0;
  while (offset < mp3.length) {
    const header = mp3.readUInt32BE(offset);
    expect(header >>> 21).toBe(0x7ff);
    expect((header >>> 19) & 3).toBe(3); // MPEG-1
    expect((header >>> 17) & 3).toBe(1); // Layer III
    const bitrate = bitrates[(header >>> 12) & 15] ?? 0;
    const rate = rates[(header >>> 10) & 3] ?? 0;
    expect(bitrate).toBeGreaterThan(0);
    expect(rate).toBeGreaterThan(0);
    offset += Math.floor((144 * bitrate * 1000) / rate) + ((header >>> 9) & 1);
    frames++;
  }
  expect(offset).toBe(mp3.length);
  expect(frames).toBeGreaterThan(10);
}

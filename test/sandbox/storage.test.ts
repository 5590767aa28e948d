import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { Crc32c } from '../../src/sandbox/crc32c.js';
import { bytes, md5Base64, put, send, sha256Hex, uploadUrl, xmlCode } from './helpers.js';

let sandbox: Sandbox;
beforeEach(async () => {
  sandbox = await startSandbox();
});
afterEach(async () => {
  await sandbox.close();
});

describe('signed PUT', () => {
  it('stores the hashes of the bytes and reports both x-goog-hash values', async () => {
    const body = bytes(300_000);
    const url = await uploadUrl(sandbox, 's1', 'audio/mpeg', 'take 2.mp3');
    const answer = await put(url, body, 'audio/mpeg');
    expect(answer.status).toBe(200);
    const crc = new Crc32c().update(body).digestBase64();
    expect(answer.headers['x-goog-hash']).toEqual([`crc32c=${crc}`, `md5=${md5Base64(body)}`]);
    expect(answer.headers.etag).toBe(`"${Buffer.from(md5Base64(body), 'base64').toString('hex')}"`);
    const [object] = sandbox.objects();
    expect(sandbox.objects()).toHaveLength(1);
    expect(object).toEqual({
      sessionId: 's1',
      uploadFolderName: expect.stringMatching(/^[0-9a-f-]{36}$/),
      objectName: 'take 2.mp3',
      size: body.length,
      sha256: sha256Hex(body),
      md5: md5Base64(body),
      contentType: 'audio/mpeg',
    });
    expect(sandbox.requests().at(-1)).toEqual({ endpoint: 'put', sessionId: 's1', status: 200 });
  });

  it('lists the same bytes sent twice as two objects', async () => {
    const url = await uploadUrl(sandbox, 's1');
    await put(url, bytes(10));
    await put(url, bytes(10));
    expect(sandbox.objects().map((o) => o.sha256)).toEqual([sha256Hex(bytes(10)), sha256Hex(bytes(10))]);
  });

  it('refuses another Content-Type than the signed one with 403 SignatureDoesNotMatch', async () => {
    const answer = await put(await uploadUrl(sandbox, 's1', 'audio/wav'), bytes(1000), 'audio/x-wav');
    expect(answer.status).toBe(403);
    expect(answer.headers['content-type']).toBe('application/xml');
    expect(answer.text.startsWith("<?xml version='1.0' encoding='UTF-8'?><Error>")).toBe(true);
    expect(xmlCode(answer.text)).toBe('SignatureDoesNotMatch');
    expect(sandbox.objects()).toEqual([]);
  });

  it('refuses a tampered signature or query with 403', async () => {
    const url = await uploadUrl(sandbox, 's1');
    const flipped = url.replace(/X-Goog-Signature=(.)/, (_, c: string) => `X-Goog-Signature=${c === 'a' ? 'b' : 'a'}`);
    expect(xmlCode((await put(flipped, bytes(10))).text)).toBe('SignatureDoesNotMatch');
    const longer = url.replace('X-Goog-Expires=600', 'X-Goog-Expires=6000');
    const answer = await put(longer, bytes(10));
    expect([answer.status, xmlCode(answer.text)]).toEqual([403, 'SignatureDoesNotMatch']);
    const renamed = url.replace('mix.wav', 'other.wav');
    expect((await put(renamed, bytes(10))).status).toBe(403);
  });

  it('refuses a URL past its lifetime with 400 ExpiredToken', async () => {
    const url = await uploadUrl(sandbox, 's1');
    const date = /X-Goog-Date=(\d{8}T\d{6}Z)/.exec(url)?.[1] ?? '';
    const lastWeek = new Date(Date.now() - 8 * 86400_000).toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
    const answer = await put(url.replace(date, lastWeek), bytes(10));
    // The date is signed, so Google checks the lifetime first and never gets to the signature.
    expect(answer.status).toBe(400);
    expect(xmlCode(answer.text)).toBe('ExpiredToken');
  });

  it('issues an expired URL under the expired-url fault, then good ones again', async () => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'expired-url' });
    const expired = await put(await uploadUrl(sandbox, 's1'), bytes(2000));
    expect(expired.status).toBe(400);
    expect(xmlCode(expired.text)).toBe('ExpiredToken');
    expect(expired.text).toContain('<Message>Invalid argument.</Message>');
    expect((await put(await uploadUrl(sandbox, 's1'), bytes(2000))).status).toBe(200);
    expect(sandbox.requests().filter((r) => r.endpoint === 'put').map((r) => r.status)).toEqual([400, 200]);
  });

  it('answers 400 MalformedSecurityHeader for a missing signed header or an unsigned one', async () => {
    const url = await uploadUrl(sandbox, 's1');
    const noType = await send(url, { method: 'PUT', body: bytes(10) });
    expect([noType.status, xmlCode(noType.text)]).toEqual([400, 'MalformedSecurityHeader']);
    const goog = await put(url, bytes(10), 'audio/wav', { 'x-goog-meta-take': '2' });
    expect([goog.status, xmlCode(goog.text)]).toEqual([400, 'MalformedSecurityHeader']);
    const md5 = await put(url, bytes(10), 'audio/wav', { 'Content-MD5': md5Base64(bytes(10)) });
    expect([md5.status, xmlCode(md5.text)]).toEqual([400, 'MalformedSecurityHeader']);
  });

  it('refuses a chunked upload with 411 MissingContentLength', async () => {
    const url = await uploadUrl(sandbox, 's1');
    async function* chunks(): AsyncIterable<Buffer> {
      yield bytes(100);
      yield bytes(100);
    }
    const answer = await send(url, { method: 'PUT', headers: { 'Content-Type': 'audio/wav' }, body: Readable.from(chunks()) });
    expect([answer.status, xmlCode(answer.text)]).toEqual([411, 'MissingContentLength']);
    expect(sandbox.objects()).toEqual([]);
  });

  it('stores nothing for a body shorter than its Content-Length', async () => {
    const url = new URL(await uploadUrl(sandbox, 's1'));
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.end(
          `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: audio/wav\r\n` +
            'Content-Length: 1000\r\n\r\n' +
            'x'.repeat(400),
        );
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
      socket.resume();
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sandbox.objects()).toEqual([]);
    expect(sandbox.requests().at(-1)).toEqual({ endpoint: 'put', sessionId: 's1', status: 0 });
  });
});

describe('storage faults', () => {
  it('answers a status fault as an XML error with Retry-After', async () => {
    sandbox.faults.add({ target: 'put', kind: 'status', status: 503, retryAfterSeconds: 3 });
    const url = await uploadUrl(sandbox, 's1');
    const answer = await put(url, bytes(5000));
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('3');
    expect(xmlCode(answer.text)).toBe('ServiceUnavailable');
    expect((await put(url, bytes(5000))).status).toBe(200);
  });

  it.each([0, 1000])('resets the connection after %i body bytes', async (afterBytes) => {
    sandbox.faults.add({ target: 'put', kind: 'reset', afterBytes });
    const url = await uploadUrl(sandbox, 's1');
    await expect(put(url, bytes(200_000))).rejects.toThrow();
    expect(sandbox.objects()).toEqual([]);
    expect(sandbox.requests().at(-1)).toEqual({ endpoint: 'put', sessionId: 's1', status: 0 });
    expect((await put(url, bytes(200_000))).status).toBe(200);
  });

  it('stalls an upload until the client gives up', async () => {
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 1024 });
    const url = await uploadUrl(sandbox, 's1');
    const stalled = send(url, {
      method: 'PUT',
      headers: { 'Content-Type': 'audio/wav' },
      body: bytes(100_000),
      headersTimeout: 300,
    });
    await expect(stalled).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(sandbox.objects()).toEqual([]);
  });

  it('holds an upload for forMs under a stall that ends, then stores it', async () => {
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 1024, forMs: 300 });
    const body = bytes(100_000);
    const started = Date.now();
    expect((await put(await uploadUrl(sandbox, 's1'), body)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(sandbox.objects().map((o) => o.sha256)).toEqual([sha256Hex(body)]);
  });

  it('destroys a stalled upload on close()', async () => {
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 0 });
    const url = await uploadUrl(sandbox, 's1');
    const stalled = request(url, { method: 'PUT', headers: { 'Content-Type': 'audio/wav' }, body: bytes(50_000) });
    const outcome = stalled.then(
      () => 'answered',
      () => 'failed',
    );
    await waitFor(() => sandbox.requests().some((r) => r.endpoint === 'put'));
    const started = Date.now();
    await sandbox.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await outcome).toBe('failed');
  });

  it('answers a wrong md5 under the bad-md5 fault but stores the object', async () => {
    sandbox.faults.add({ target: 'put', kind: 'bad-md5' });
    const body = bytes(4096);
    const answer = await put(await uploadUrl(sandbox, 's1'), body);
    expect(answer.status).toBe(200);
    const hashes = answer.headers['x-goog-hash'] as string[];
    expect(hashes).toHaveLength(2);
    expect(hashes).not.toContain(`md5=${md5Base64(body)}`);
    expect(sandbox.objects()[0]?.md5).toBe(md5Base64(body));
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}

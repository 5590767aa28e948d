import { describe, expect, it } from 'vitest';
import { startSandbox } from '../../src/sandbox/index.js';
import { Crc32c } from '../../src/sandbox/crc32c.js';
import { UrlSigner, formatGoogDate } from '../../src/sandbox/signing.js';

describe('Crc32c', () => {
  it('matches the CRC-32C check value and is incremental', () => {
    const check = Buffer.from('123456789');
    expect(new Crc32c().update(check).digestBase64()).toBe(Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'));
    expect(new Crc32c().update(check.subarray(0, 4)).update(check.subarray(4)).digestBase64()).toBe('4waSgw==');
    expect(new Crc32c().digestBase64()).toBe('AAAAAA==');
  });
});

describe('UrlSigner', () => {
  const input = {
    method: 'PUT' as const,
    path: '/storage/b/uploads/f/a.wav',
    headers: { 'content-type': 'audio/wav', host: '127.0.0.1:1' },
    date: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
    expiresSeconds: 600,
  };

  it('verifies what it signed and nothing else', () => {
    const signer = new UrlSigner();
    const query = new URLSearchParams(signer.sign(input));
    expect(query.get('X-Goog-Date')).toBe('20240102T030405Z');
    expect(signer.verify('PUT', input.path, query, input.headers)).toBe(true);
    expect(signer.verify('GET', input.path, query, input.headers)).toBe(false);
    expect(signer.verify('PUT', '/storage/b/uploads/f/b.wav', query, input.headers)).toBe(false);
    expect(signer.verify('PUT', input.path, query, { ...input.headers, 'content-type': 'audio/mpeg' })).toBe(false);
    query.append('extra', '1');
    expect(signer.verify('PUT', input.path, query, input.headers)).toBe(false);
  });

  it('uses a secret per signer', () => {
    const query = new URLSearchParams(new UrlSigner().sign(input));
    expect(new UrlSigner().verify('PUT', input.path, query, input.headers)).toBe(false);
  });

  it('formats X-Goog-Date as YYYYMMDDTHHMMSSZ', () => {
    expect(formatGoogDate(new Date('2031-12-31T23:59:58.999Z'))).toBe('20311231T235958Z');
  });
});

describe('startSandbox options', () => {
  it('refuses a non-loopback host with a clear error', async () => {
    await expect(startSandbox({ host: '0.0.0.0' })).rejects.toMatchObject({
      code: 'SANDBOX_INVALID_OPTION',
      message: expect.stringContaining('only listens on loopback'),
    });
  });

  it('refuses a bad port or masteringSeconds, naming the option', async () => {
    await expect(startSandbox({ port: 70000 })).rejects.toThrow(/`port`/);
    await expect(startSandbox({ masteringSeconds: -1 })).rejects.toThrow(/`masteringSeconds`/);
  });

  it('listens on IPv6 loopback and reports a bracketed URL', async () => {
    const sandbox = await startSandbox({ host: '::1' }).catch(() => undefined);
    // Hosts without IPv6 cannot bind ::1; the IPv4 default is covered everywhere else.
    if (!sandbox) return;
    expect(sandbox.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect(sandbox.storageOrigin).toBe(`${sandbox.url}/storage/`);
    await sandbox.close();
  });
});

import { describe, expect, it } from 'vitest';
import { useSandbox } from '../helpers/servers.js';
import { apiHeaders, callApi, put, send } from './helpers.js';

const sandbox = useSandbox();

const UPLOAD = { object_names: ['mix.wav'], content_type: 'audio/wav' };

describe('sandbox API headers', () => {
  it('answers 401 in the envelope for a wrong key', async () => {
    const { status, headers, envelope } = await callApi(sandbox, 'multi-upload', {
      headers: { ...apiHeaders(sandbox, 's1'), 'X-Api-Key': 'wrong' },
      body: UPLOAD,
    });
    expect(status).toBe(401);
    expect(headers['content-type']).toBe('application/json');
    expect(envelope).toEqual({ data: null, message: 'unauthorized client', status: 'error', code: 401 });
  });

  it('answers 401 for a wrong Source', async () => {
    const { status, envelope } = await callApi(sandbox, 'percentage', {
      headers: { ...apiHeaders(sandbox, 's1'), Source: 'mastering api' },
    });
    expect(status).toBe(401);
    expect(envelope.message).toBe('unauthorized client');
  });

  it('answers 400 without a Session-Id', async () => {
    const { status, envelope } = await callApi(sandbox, 'multi-upload', {
      headers: { 'x-api-key': sandbox.apiKey, SOURCE: 'Mastering API' },
      body: UPLOAD,
    });
    expect(status).toBe(400);
    expect(envelope).toEqual({ data: null, message: 'invalid required parameters', status: 'error', code: 400 });
  });

  it('accepts an Origin header and header names in any case', async () => {
    const { status } = await callApi(sandbox, 'multi-upload', {
      headers: {
        'X-API-KEY': sandbox.apiKey,
        source: 'Mastering API',
        'SESSION-ID': 's1',
        Origin: 'https://studio.example.com',
      },
      body: UPLOAD,
    });
    expect(status).toBe(200);
  });

  it('answers every endpoint 401 while unauthorized is on', async () => {
    sandbox.faults.setUnauthorized(true);
    expect((await callApi(sandbox, 'multi-upload', { body: UPLOAD })).status).toBe(401);
    expect((await callApi(sandbox, 'percentage')).status).toBe(401);
    expect((await callApi(sandbox, 'mastering')).status).toBe(401);
    expect((await callApi(sandbox, 'multi-download')).status).toBe(401);
    sandbox.faults.setUnauthorized(false);
    expect((await callApi(sandbox, 'multi-upload', { body: UPLOAD })).status).toBe(200);
  });

  it('answers unknown routes 404 in the envelope', async () => {
    const answer = await send(`${sandbox.url}/api/nope`, { method: 'GET', headers: apiHeaders(sandbox, 's1') });
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.text)).toMatchObject({ data: null, status: 'error', code: 404 });
  });
});

describe('multi-upload', () => {
  it('issues a V4-style signed URL under storageOrigin', async () => {
    const { status, envelope } = await callApi(sandbox, 'multi-upload', {
      sessionId: 's1',
      body: { object_names: ['My Mix #1.wav'], content_type: 'audio/wav', expiration_seconds: 900 },
    });
    expect(status).toBe(200);
    expect(envelope.status).toBe('success');
    const data = envelope.data as { upload_folder_name: string; upload_object_names: Record<string, string> };
    expect(data.upload_folder_name).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const url = data.upload_object_names['My Mix #1.wav'] ?? '';
    expect(url.startsWith(sandbox.storageOrigin)).toBe(true);
    const [path, query] = url.slice(sandbox.storageOrigin.length).split('?');
    expect(path).toBe(`cryomix-sandbox/uploads/${data.upload_folder_name}/My%20Mix%20%231.wav`);
    expect(query).toMatch(
      new RegExp(
        '^X-Goog-Algorithm=GOOG4-HMAC-SHA256' +
          '&X-Goog-Credential=sandbox%2F\\d{8}%2Fauto%2Fstorage%2Fgoog4_request' +
          '&X-Goog-Date=\\d{8}T\\d{6}Z&X-Goog-Expires=900&X-Goog-SignedHeaders=content-type%3Bhost' +
          '&X-Goog-Signature=[0-9a-f]{64}$',
      ),
    );
  });

  it('answers a repeated call for one session with a working URL in the same folder', async () => {
    const first = await callApi(sandbox, 'multi-upload', { sessionId: 's1', body: UPLOAD });
    const second = await callApi(sandbox, 'multi-upload', { sessionId: 's1', body: UPLOAD });
    const a = first.envelope.data as { upload_folder_name: string };
    const b = second.envelope.data as { upload_folder_name: string; upload_object_names: Record<string, string> };
    expect(b.upload_folder_name).toBe(a.upload_folder_name);
    expect((await put(b.upload_object_names['mix.wav'] ?? '', Buffer.from('RIFF'))).status).toBe(200);
  });

  it.each([
    ['no object_names', { content_type: 'audio/wav' }],
    ['two files', { object_names: ['a.wav', 'b.wav'], content_type: 'audio/wav' }],
    ['an unsupported content type', { object_names: ['a.flac'], content_type: 'audio/flac' }],
    ['expiration_seconds 0', { ...UPLOAD, expiration_seconds: 0 }],
    ['expiration_seconds over a week', { ...UPLOAD, expiration_seconds: 604801 }],
    ['a fractional expiration', { ...UPLOAD, expiration_seconds: 1.5 }],
  ])('refuses %s with 400', async (_, body) => {
    const { status, envelope } = await callApi(sandbox, 'multi-upload', { body });
    expect(status).toBe(400);
    expect(envelope.message).toBe('invalid required parameters');
  });

  it('refuses a body that is not JSON', async () => {
    const answer = await send(`${sandbox.url}/api/signed-url/multi-upload`, {
      method: 'POST',
      headers: apiHeaders(sandbox, 's1'),
      body: '{not json',
    });
    expect(answer.status).toBe(400);
  });
});

describe('API faults', () => {
  it('answers a status fault with Retry-After, then recovers', async () => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'status', status: 429, retryAfterSeconds: 7 });
    const faulted = await callApi(sandbox, 'multi-upload', { body: UPLOAD });
    expect(faulted.status).toBe(429);
    expect(faulted.headers['retry-after']).toBe('7');
    expect(faulted.envelope).toMatchObject({ data: null, status: 'error', code: 429 });
    expect((await callApi(sandbox, 'multi-upload', { body: UPLOAD })).status).toBe(200);
  });

  it('consumes a fault `times` times, in FIFO order per target', async () => {
    sandbox.faults.add({ target: 'percentage', kind: 'status', status: 503, times: 2 });
    sandbox.faults.add({ target: 'percentage', kind: 'status', status: 500 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await callApi(sandbox, 'percentage')).status);
    expect(statuses).toEqual([503, 503, 500, 400]);
  });

  it('rejects an invalid fault', () => {
    expect(() => sandbox.faults.add({ target: 'put', kind: 'status', status: 200 })).toThrow(TypeError);
    const resetOnGet = { target: 'get', kind: 'reset', afterBytes: 1 } as never;
    expect(() => sandbox.faults.add(resetOnGet)).toThrow(/invalid sandbox fault/);
  });

  it('clear() drops pending faults', async () => {
    sandbox.faults.add({ target: 'percentage', kind: 'status', status: 503 });
    sandbox.faults.clear();
    expect((await callApi(sandbox, 'percentage')).status).toBe(400);
  });

  it('records every API request with its Session-Id and status', async () => {
    await callApi(sandbox, 'multi-upload', { sessionId: 'a', body: UPLOAD });
    await callApi(sandbox, 'percentage', { sessionId: 'b' });
    await callApi(sandbox, 'percentage', { headers: { 'X-Api-Key': sandbox.apiKey, Source: 'Mastering API' } });
    expect(sandbox.requests()).toEqual([
      { endpoint: 'multi-upload', sessionId: 'a', status: 200 },
      { endpoint: 'percentage', sessionId: 'b', status: 400 },
      { endpoint: 'percentage', sessionId: null, status: 400 },
    ]);
  });
});

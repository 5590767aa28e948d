import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import type { Fault } from '../../src/sandbox/index.js';
import { useSandbox } from '../helpers/servers.js';
import { apiHeaders, bytes, callApi, put, send, sha256Hex, xmlCode } from './helpers.js';

/** Hostile answers (issue 3, scenario 8): what the sandbox sends under each fault, and that it recovers after. */

const sandbox = useSandbox();

const UPLOAD = { object_names: ['mix.wav'], content_type: 'audio/wav' };
/** callApi's default Session-Id. */
const SESSION = 'session-1';
const MULTI_UPLOAD = '/api/signed-url/multi-upload';

interface UploadData {
  upload_folder_name: string;
  upload_object_names: Record<string, string>;
}

/** A multi-upload call whose body is read as text: hostile bodies are not always JSON. */
function rawUpload(sessionId = SESSION): ReturnType<typeof send> {
  return send(`${sandbox.url}${MULTI_UPLOAD}`, {
    method: 'POST',
    headers: { ...apiHeaders(sandbox, sessionId), 'Content-Type': 'application/json' },
    body: JSON.stringify(UPLOAD),
  });
}

async function honestAnswer(sessionId = SESSION): Promise<UploadData> {
  const { status, envelope } = await callApi(sandbox, 'multi-upload', { sessionId, body: UPLOAD });
  expect(status).toBe(200);
  return envelope.data as UploadData;
}

describe('hostile multi-upload answers', () => {
  it('answers exactly the injected signed URL, keeping the folder, then honest URLs again', async () => {
    const hostile = 'http://user:pw@127.0.0.1:9/storage/x/mix.wav?X-Goog-Signature=00';
    sandbox.faults.add({ target: 'multi-upload', kind: 'signed-url', url: hostile });
    const { status, envelope } = await callApi(sandbox, 'multi-upload', { body: UPLOAD });
    expect(status).toBe(200);
    expect(envelope).toMatchObject({ status: 'success', code: 200 });
    const data = envelope.data as UploadData;
    expect(data.upload_object_names).toEqual({ 'mix.wav': hostile });
    const honest = await honestAnswer();
    expect(honest.upload_folder_name).toBe(data.upload_folder_name);
    expect(honest.upload_object_names['mix.wav']).toMatch(new RegExp(`^${sandbox.storageOrigin}`));
  });

  it('accepts any string as the URL, even one that is not a URL', async () => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'signed-url', url: '' });
    const data = (await callApi(sandbox, 'multi-upload', { body: UPLOAD })).envelope.data as UploadData;
    expect(data.upload_object_names).toEqual({ 'mix.wav': '' });
  });

  it('names another object, with a URL storage accepts for that object', async () => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'other-object' });
    sandbox.faults.add({ target: 'multi-upload', kind: 'other-object', objectName: 'secret.wav' });
    const first = (await callApi(sandbox, 'multi-upload', { body: UPLOAD })).envelope.data as UploadData;
    const second = (await callApi(sandbox, 'multi-upload', { body: UPLOAD })).envelope.data as UploadData;
    expect(Object.keys(first.upload_object_names)).toEqual(['other-mix.wav']);
    expect(Object.keys(second.upload_object_names)).toEqual(['secret.wav']);
    expect((await put(first.upload_object_names['other-mix.wav']!, bytes(500))).status).toBe(200);
    expect(sandbox.objects()).toMatchObject([{ sessionId: SESSION, objectName: 'other-mix.wav', sha256: sha256Hex(bytes(500)) }]);
  });

  it.each(['upload_folder_name', 'upload_object_names'] as const)('leaves %s out of data', async (field) => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'missing-field', field });
    const { status, envelope } = await callApi(sandbox, 'multi-upload', { body: UPLOAD });
    expect(status).toBe(200);
    expect(envelope.data).toBeTypeOf('object');
    expect(Object.keys(envelope.data as object)).toEqual(['upload_folder_name', 'upload_object_names'].filter((name) => name !== field));
    await honestAnswer();
  });

  it('leaves data out of the envelope', async () => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'missing-field', field: 'data' });
    const answer = await rawUpload();
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({ message: 'Signed URL generated successfully', status: 'success', code: 200 });
    await honestAnswer();
  });

  it('answers a complete HTTP response whose body is half an envelope', async () => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'malformed-json' });
    const answer = await rawUpload();
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.text));
    expect(answer.text.startsWith('{"data":{"upload_folder_name":"')).toBe(true);
    expect(() => JSON.parse(answer.text) as unknown).toThrow(SyntaxError);
    await honestAnswer();
  });

  it('pads the honest envelope to the asked size as valid JSON', async () => {
    const size = 3 * 1024 * 1024 + 17;
    sandbox.faults.add({ target: 'multi-upload', kind: 'huge-json', bytes: size });
    const answer = await rawUpload();
    expect(answer.status).toBe(200);
    expect(Number(answer.headers['content-length'])).toBe(size);
    expect(Buffer.byteLength(answer.text)).toBe(size);
    const envelope = JSON.parse(answer.text) as { data: UploadData; status: string; padding: string };
    expect(envelope.status).toBe('success');
    expect(Object.keys(envelope.data.upload_object_names)).toEqual(['mix.wav']);
    expect(envelope.padding).toMatch(/^x+$/);
  });

  it('streams a gigabyte body to a client that stops reading, and keeps serving', async () => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'huge-json', bytes: 2 ** 30 });
    const response = await request(`${sandbox.url}${MULTI_UPLOAD}`, {
      method: 'POST',
      headers: { ...apiHeaders(sandbox, SESSION), 'Content-Type': 'application/json' },
      body: JSON.stringify(UPLOAD),
    });
    expect(response.headers['content-length']).toBe(String(2 ** 30));
    let read = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      read += chunk.length;
      if (read > 1024 * 1024) break;
    }
    expect(read).toBeGreaterThan(1024 * 1024);
    await honestAnswer();
  });

  it('redirects before reading the call, with the default 307 or the asked status', async () => {
    const location = 'http://127.0.0.1:9/api/signed-url/multi-upload';
    sandbox.faults.add({ target: 'multi-upload', kind: 'redirect', location });
    sandbox.faults.add({ target: 'multi-upload', kind: 'redirect', location, status: 308 });
    const first = await callApi(sandbox, 'multi-upload', { body: UPLOAD });
    expect([first.status, first.headers.location]).toEqual([307, location]);
    const second = await callApi(sandbox, 'multi-upload', { headers: { 'X-Api-Key': 'wrong' }, body: UPLOAD });
    expect([second.status, second.headers.location]).toEqual([308, location]);
    await honestAnswer();
    expect(sandbox.requests().map((r) => r.status)).toEqual([307, 308, 200]);
  });

  it('spoils successful answers only, but a refused call still consumes the fault', async () => {
    sandbox.faults.add({ target: 'multi-upload', kind: 'malformed-json' });
    const refused = await callApi(sandbox, 'multi-upload', { headers: { ...apiHeaders(sandbox, SESSION), 'X-Api-Key': 'wrong' }, body: UPLOAD });
    expect(refused.status).toBe(401);
    expect(refused.envelope.message).toBe('unauthorized client');
    await honestAnswer();
  });

  it('is reachable over the control route', async () => {
    const fault = { target: 'multi-upload', kind: 'signed-url', url: 'https://storage.googleapis.com.evil.test/x' };
    const added = await send(`${sandbox.url}/_sandbox/faults`, { method: 'POST', body: JSON.stringify(fault) });
    expect(added.status).toBe(204);
    const data = (await callApi(sandbox, 'multi-upload', { body: UPLOAD })).envelope.data as UploadData;
    expect(data.upload_object_names['mix.wav']).toBe(fault.url);
  });
});

describe('storage redirect', () => {
  it('answers a PUT with 307 and Location after reading the body, and stores nothing', async () => {
    const location = 'http://127.0.0.1:9/elsewhere/mix.wav?X-Goog-Signature=00';
    const url = (await honestAnswer()).upload_object_names['mix.wav']!;
    sandbox.faults.add({ target: 'put', kind: 'redirect', location });
    const answer = await put(url, bytes(200_000));
    expect([answer.status, answer.headers.location, xmlCode(answer.text)]).toEqual([307, location, 'TemporaryRedirect']);
    expect(sandbox.objects()).toEqual([]);
    expect(sandbox.requests().at(-1)).toEqual({ endpoint: 'put', sessionId: SESSION, status: 307 });
    expect((await put(url, bytes(200_000))).status).toBe(200);
  });
});

describe('hostile fault validation', () => {
  const invalid: [string, unknown][] = [
    ['a redirect on get', { target: 'get', kind: 'redirect', location: 'http://127.0.0.1:9/' }],
    ['a redirect status that is not a redirect', { target: 'put', kind: 'redirect', location: 'http://127.0.0.1:9/', status: 200 }],
    ['a Location no header can carry', { target: 'put', kind: 'redirect', location: 'http://a/\r\nX-Evil: 1' }],
    ['a signed-url fault without url', { target: 'multi-upload', kind: 'signed-url' }],
    ['a signed-url fault on put', { target: 'put', kind: 'signed-url', url: 'http://127.0.0.1:9/' }],
    ['an unknown missing field', { target: 'multi-upload', kind: 'missing-field', field: 'message' }],
    ['a zero-byte huge body', { target: 'multi-upload', kind: 'huge-json', bytes: 0 }],
    ['an empty other object name', { target: 'multi-upload', kind: 'other-object', objectName: '' }],
    ['an unknown member', { target: 'multi-upload', kind: 'malformed-json', body: '{' }],
  ];

  it.each(invalid)('refuses %s', (_, fault) => {
    expect(() => sandbox.faults.add(fault as Fault)).toThrow(/invalid sandbox fault/);
  });
});

import { describe, expect, it } from 'vitest';
import { CryomixClient, type ClientOptions } from '../../src/cryomix/client.js';
import { RejectedError, TransientError, UnsafeUrlError } from '../../src/cryomix/errors.js';
import { useLocalApi } from '../helpers/servers.js';
import { readBody, sendJson, clientOf } from './localServer.js';

/** The mastering half of the client: start, progress, download URLs. */

const API_KEY = 'ck_live_SECRET_mastering_77aa';
const SESSION = '4f1c2b3a-5d6e-4f70-8a9b-0c1d2e3f4a5b';
const QUERY =
  'X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20240501T120000Z&X-Goog-Expires=600' +
  '&X-Goog-SignedHeaders=host&X-Goog-Signature=d0wn5164a7ure';
const signed = (name: string): string => `https://storage.googleapis.com/cryo-bucket/processed/f-1/${name}?${QUERY}`;

const { api, agent } = useLocalApi();

const client = (overrides: Partial<ClientOptions> = {}): CryomixClient => clientOf(api.origin, API_KEY, agent, overrides);

interface Seen {
  method?: string;
  url?: string;
  headers: Record<string, unknown>;
  body: unknown;
}

/** Answers every request with `answer` and records the last one. */
function recordAndAnswer(status: number, answer: unknown): () => Seen | undefined {
  let seen: Seen | undefined;
  api.handle(async (request, response) => {
    const text = (await readBody(request)).toString();
    seen = { method: request.method, url: request.url, headers: request.headers, body: text === '' ? undefined : JSON.parse(text) };
    sendJson(response, status, answer);
  });
  return () => seen;
}

/** The rejection, checked for the key and the URL signature on the way. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (reason: unknown) => reason as Error,
  );
  expect(`${error.message}\n${error.stack ?? ''}`).not.toMatch(new RegExp(`${API_KEY}|d0wn5164a7ure`));
  return error;
}

const ok = (data: unknown) => ({ data, message: 'ok', status: 'success', code: 200 });

describe('startMastering', () => {
  it('POSTs the settings given, with the key, Session-Id, Source and Origin', async () => {
    const seen = recordAndAnswer(200, ok(null));
    await client().startMastering(SESSION, { meq: 7, mca: -1.5, mwa: 0 });
    expect(seen()).toMatchObject({
      method: 'POST',
      url: '/api/mastering',
      headers: {
        'x-api-key': API_KEY,
        'session-id': SESSION,
        source: 'Mastering API',
        origin: 'https://studio.example.com',
        'content-type': 'application/json',
      },
    });
    expect(seen()?.body).toEqual({ meq: 7, mca: -1.5, mwa: 0 });
  });

  it('sends only the keys present, so the API applies its defaults to the rest', async () => {
    const seen = recordAndAnswer(200, ok(null));
    await client().startMastering(SESSION, { mha: undefined, mla: 2 });
    expect(seen()?.body).toEqual({ mla: 2 });
    await client().startMastering(SESSION, {});
    expect(seen()?.body).toEqual({});
  });

  it('refuses a value JSON cannot carry, or a setting the API does not have, before calling', async () => {
    const before = api.connections();
    await expect(client().startMastering(SESSION, { meq: Number.NaN })).rejects.toThrow(/`meq` to be a finite number/);
    await expect(client().startMastering(SESSION, { loud: 3 } as never)).rejects.toThrow(/unknown mastering setting "loud"/);
    expect(api.connections()).toBe(before);
  });

  it("maps 400 to RejectedError with the API's message: the pipeline decides what it means", async () => {
    recordAndAnswer(400, { data: null, message: 'mastering job already started for this Session-Id', status: 'error', code: 400 });
    const error = await failure(client().startMastering(SESSION, {}));
    expect(error).toBeInstanceOf(RejectedError);
    expect(error).toMatchObject({ statusCode: 400, apiMessage: 'mastering job already started for this Session-Id' });
  });

  it('maps 503 to TransientError', async () => {
    recordAndAnswer(503, { message: 'busy' });
    await expect(client().startMastering(SESSION, {})).rejects.toBeInstanceOf(TransientError);
  });

  it('rejects with the abort reason when the signal fires', async () => {
    api.handle(() => undefined);
    const shutdown = new AbortController();
    const reason = new Error('daemon stopping');
    setTimeout(() => shutdown.abort(reason), 50);
    await expect(client().startMastering(SESSION, {}, shutdown.signal)).rejects.toBe(reason);
  });
});

describe('masteringProgress', () => {
  it('lists the processed object names of a completed job, in their order', async () => {
    recordAndAnswer(
      200,
      ok({
        status: 'completed',
        percentage_complete: 100,
        processedFolderName: 'f-1',
        processedObjectNames: { '0': 'FinalMaster.wav', '1': 'FinalMaster.mp3', '2': 'MasteringReport.json', '3': 'OriginalMix.mp3' },
      }),
    );
    await expect(client().masteringProgress(SESSION)).resolves.toEqual({
      status: 'completed',
      percentComplete: 100,
      processedObjectNames: ['FinalMaster.wav', 'FinalMaster.mp3', 'MasteringReport.json', 'OriginalMix.mp3'],
    });
  });

  it('reads the names from an array too, and leaves them out when a completed answer has none', async () => {
    recordAndAnswer(200, ok({ status: 'completed', percentage_complete: 100, processedObjectNames: ['FinalMaster.wav'] }));
    await expect(client().masteringProgress(SESSION)).resolves.toMatchObject({ processedObjectNames: ['FinalMaster.wav'] });
    recordAndAnswer(200, ok({ status: 'completed', percentage_complete: '100' }));
    await expect(client().masteringProgress(SESSION)).resolves.toEqual({ status: 'completed', percentComplete: 100 });
  });

  it('treats a names list that holds no names as malformed', async () => {
    recordAndAnswer(200, ok({ status: 'completed', percentage_complete: 100, processedObjectNames: { '0': 7 } }));
    const error = await failure(client().masteringProgress(SESSION));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/processedObjectNames/);
  });

  it('still answers null on 400, for check and the 401 probe', async () => {
    recordAndAnswer(400, { data: null, message: 'Session-Id not found', status: 'error', code: 400 });
    await expect(client().masteringProgress(SESSION)).resolves.toBeNull();
  });
});

describe('requestDownloadUrls', () => {
  const names = ['FinalMaster.wav', 'FinalMaster.mp3', 'MasteringReport.json', 'OriginalMix.mp3'];
  const urls = (overrides: Record<string, unknown> = {}) =>
    ok({ download_audio_urls: { ...Object.fromEntries(names.map((name) => [name, signed(name)])), ...overrides } });

  it('POSTs the lifetime asked for and maps each result to its validated URL and expiry', async () => {
    const seen = recordAndAnswer(200, urls());
    const downloads = await client().requestDownloadUrls(SESSION, 600);
    expect(seen()).toMatchObject({ method: 'POST', url: '/api/signed-url/multi-download', body: { expiration_seconds: 600 } });
    expect(seen()?.headers).toMatchObject({ 'x-api-key': API_KEY, 'session-id': SESSION, source: 'Mastering API' });
    expect([...downloads.keys()]).toEqual(names);
    const wav = downloads.get('FinalMaster.wav');
    expect(wav?.url.href).toBe(new URL(signed('FinalMaster.wav')).href);
  });

  it.each([
    ['another host', 'https://storage.googleapis.com.evil.example/b/FinalMaster.wav?X-Goog-Signature=d0wn5164a7ure'],
    ['userinfo', 'https://storage.googleapis.com@evil.example/b/FinalMaster.wav?X-Goog-Signature=d0wn5164a7ure'],
    ['plain http', 'http://storage.googleapis.com/b/FinalMaster.wav?X-Goog-Signature=d0wn5164a7ure'],
    ['not a URL', 'FinalMaster.wav'],
    ['not a string', 42],
  ])('refuses the whole answer when one URL goes to %s, without quoting its query', async (_name, bad) => {
    recordAndAnswer(200, urls({ 'MasteringReport.json': bad }));
    const error = await failure(client().requestDownloadUrls(SESSION, 600));
    expect(error).toBeInstanceOf(UnsafeUrlError);
    expect(error.message).not.toContain('d0wn5164a7ure');
  });

  it.each(['../../.bashrc', 'sub/FinalMaster.wav', '..', 'a\\b.wav'])('refuses a result named %j', async (name) => {
    recordAndAnswer(200, urls({ [name]: signed('x') }));
    const error = await failure(client().requestDownloadUrls(SESSION, 600));
    expect(error).toBeInstanceOf(UnsafeUrlError);
    expect(error.message).toMatch(/not a plain file name/);
  });

  it('maps 400 (job not completed) to RejectedError and a missing map to a malformed answer', async () => {
    recordAndAnswer(400, { data: null, message: 'mastering is not completed for this Session-Id', status: 'error', code: 400 });
    await expect(client().requestDownloadUrls(SESSION, 600)).rejects.toBeInstanceOf(RejectedError);
    recordAndAnswer(200, ok({ download_urls: {} }));
    const error = await failure(client().requestDownloadUrls(SESSION, 600));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/"download_audio_urls" is missing/);
  });
});

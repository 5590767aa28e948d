import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CryomixClient, type ApiAnswer, type ClientOptions } from '../../src/cryomix/client.js';
import { RejectedError, TransientError, UnauthorizedError, UnsafeUrlError } from '../../src/cryomix/errors.js';
import { ConfigError } from '../../src/errors.js';
import { useLocalApi } from '../helpers/servers.js';
import { readBody, sendJson, startLocalServer, clientOf } from './localServer.js';

const API_KEY = 'ck_live_SECRET_9f8e7d6c5b4a';
const SESSION = 'b7a0c1e2-3d4f-4a5b-8c6d-7e8f9a0b1c2d';
const SIGNED =
  'https://storage.googleapis.com/cryo-bucket/uploads/folder-1/mix.wav?X-Goog-Algorithm=GOOG4-RSA-SHA256' +
  '&X-Goog-Date=20240501T120000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=content-type%3Bhost&X-Goog-Signature=abc123';

const { api, agent } = useLocalApi();
/** Every error any test saw, checked at the end for the key. */
const seen: unknown[] = [];

afterAll(() => {
  for (const error of seen) expect(everythingSaid(error)).not.toContain(API_KEY);
});

const client = (overrides: Partial<ClientOptions> = {}): CryomixClient => clientOf(api.origin, API_KEY, agent, overrides);

function askForUrl(c = client()) {
  return c.requestUploadUrl({ sessionId: SESSION, objectName: 'mix.wav', contentType: 'audio/wav', expirationSeconds: 900 });
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (reason: unknown) => reason,
  );
  seen.push(error);
  return error as Error;
}

function uploadAnswer(urls: Record<string, unknown>) {
  return { data: { upload_folder_name: 'folder-1', upload_object_names: urls }, message: 'ok', status: 'success', code: 200 };
}

describe('requests', () => {
  it('sends the key, Session-Id, Source, Origin and a JSON body', async () => {
    let seenRequest: { method?: string; url?: string; headers: Record<string, unknown>; body: unknown } | undefined;
    api.handle(async (request, response) => {
      const body = JSON.parse((await readBody(request)).toString());
      seenRequest = { method: request.method, url: request.url, headers: request.headers, body };
      sendJson(response, 200, uploadAnswer({ 'mix.wav': SIGNED }));
    });
    const upload = await askForUrl();
    expect(seenRequest?.method).toBe('POST');
    expect(seenRequest?.url).toBe('/api/signed-url/multi-upload');
    expect(seenRequest?.headers).toMatchObject({
      'x-api-key': API_KEY,
      'session-id': SESSION,
      source: 'Mastering API',
      origin: 'https://studio.example.com',
      'content-type': 'application/json',
    });
    expect(seenRequest?.body).toEqual({ object_names: ['mix.wav'], content_type: 'audio/wav', expiration_seconds: 900 });
    expect(upload.url.href).toBe(new URL(SIGNED).href);
    expect(upload.uploadFolderName).toBe('folder-1');
    // From X-Goog-Expires; X-Goog-Date (the API's clock, long past here) plays no part.
    expect(upload.lifetimeSeconds).toBe(900);
  });

  it('sends a GET without a body or Content-Type, and no Origin unless configured', async () => {
    let headers: Record<string, unknown> = {};
    let method: string | undefined;
    api.handle((request, response) => {
      headers = request.headers;
      method = request.method;
      sendJson(response, 200, { data: { status: 'processing', percentage_complete: 42 }, message: '', status: 'success', code: 200 });
    });
    const progress = await client({ origin: undefined }).masteringProgress(SESSION);
    expect(progress).toEqual({ status: 'processing', percentComplete: 42 });
    expect(method).toBe('GET');
    expect(headers).toMatchObject({ 'x-api-key': API_KEY, 'session-id': SESSION, source: 'Mastering API' });
    expect(headers).not.toHaveProperty('content-type');
    expect(headers).not.toHaveProperty('origin');
  });

  it('keeps a path prefix of the base URL', async () => {
    let path: string | undefined;
    api.handle((request, response) => {
      path = request.url;
      sendJson(response, 400, { data: null, message: 'Session-Id not found', status: 'error', code: 400 });
    });
    await client({ baseUrl: `${api.origin}/vendor/` }).masteringProgress(SESSION);
    expect(path).toBe('/vendor/api/percentage');
  });

  it('falls back to the asked lifetime when the URL carries no expiry', async () => {
    api.handle((_request, response) => sendJson(response, 200, uploadAnswer({ 'mix.wav': 'https://storage.googleapis.com/b/mix.wav' })));
    const upload = await client().requestUploadUrl({ sessionId: SESSION, objectName: 'mix.wav', contentType: 'audio/wav', expirationSeconds: 1200 });
    expect(upload.lifetimeSeconds).toBe(1200);
  });
});

describe('answers', () => {
  it('resolves null on 400 from /api/percentage: the key was accepted', async () => {
    api.handle((_request, response) => sendJson(response, 400, { data: null, message: 'Session-Id not found', status: 'error', code: 400 }));
    await expect(client().masteringProgress(SESSION)).resolves.toBeNull();
  });

  it('maps 401 to UnauthorizedError', async () => {
    api.handle((_request, response) => sendJson(response, 401, { data: null, message: 'unauthorized client', status: 'error', code: 401 }));
    expect(await failure(askForUrl())).toBeInstanceOf(UnauthorizedError);
    expect(await failure(client().masteringProgress(SESSION))).toBeInstanceOf(UnauthorizedError);
  });

  it("maps 400 to RejectedError carrying the API's message", async () => {
    api.handle((_request, response) => sendJson(response, 400, { data: null, message: 'invalid required parameters', status: 'error', code: 400 }));
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(RejectedError);
    expect(error).toMatchObject({ statusCode: 400, apiMessage: 'invalid required parameters' });
  });

  it('uses the body text, trimmed, when a refusal is not JSON', async () => {
    api.handle((_request, response) => response.writeHead(404).end(`<h1>Not   Found</h1>${'x'.repeat(500)}`));
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(RejectedError);
    expect((error as RejectedError).apiMessage.startsWith('<h1>Not Found</h1>xxx')).toBe(true);
    expect((error as RejectedError).apiMessage.length).toBeLessThanOrEqual(201);
  });

  it('maps 429 to TransientError with Retry-After', async () => {
    api.handle((_request, response) => sendJson(response, 429, { message: 'slow down' }, { 'retry-after': '7' }));
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ statusCode: 429, retryAfterMs: 7_000 });
  });

  it.each([408, 500, 502, 503])('maps %i to TransientError', async (status) => {
    api.handle((_request, response) => response.writeHead(status).end('<html>upstream trouble</html>'));
    const error = await failure(client().masteringProgress(SESSION));
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ statusCode: status, retryAfterMs: undefined });
  });

  it('refuses a redirect and never contacts its target', async () => {
    const elsewhere = await startLocalServer((_request, response) => sendJson(response, 200, uploadAnswer({ 'mix.wav': SIGNED })));
    try {
      api.handle((_request, response) => response.writeHead(307, { location: `${elsewhere.origin}/api/signed-url/multi-upload?k=1` }).end());
      const error = await failure(askForUrl());
      expect(error).toBeInstanceOf(RejectedError);
      expect(error.message).toMatch(/redirect/);
      expect(error.message).not.toContain('k=1');
      expect(elsewhere.connections()).toBe(0);
    } finally {
      await elsewhere.close();
    }
  });

  it('never repeats the key when an error page echoes the request', async () => {
    api.handle((request, response) =>
      sendJson(response, 400, { message: `bad key ${String(request.headers['x-api-key'])}`, status: 'error', code: 400 }),
    );
    const error = await failure(askForUrl());
    expect(error.message).toContain('bad key <api key>');
    expect(error.message).not.toContain(API_KEY);
  });
});

describe('answer observer', () => {
  it('reports each answer with its endpoint, status and the API clock, and a call that got none', async () => {
    const answers: ApiAnswer[] = [];
    const observed = client({ onAnswer: (answer) => answers.push(answer) });
    api.handle((_request, response) => sendJson(response, 429, { message: 'slow down' }, { date: 'Tue, 01 Jan 2030 00:00:00 GMT' }));
    await failure(askForUrl(observed));
    api.handle((request) => request.socket.destroy());
    await failure(observed.masteringProgress(SESSION));
    expect(answers).toEqual([
      { endpoint: 'POST /api/signed-url/multi-upload', statusCode: 429, date: new Date('2030-01-01T00:00:00Z') },
      { endpoint: 'GET /api/percentage' },
    ]);
  });
});

describe('malformed answers', () => {
  it.each([
    ['not JSON', 'Service temporarily unavailable'],
    ['a JSON array', '[]'],
    ['an error status on 200', JSON.stringify({ data: null, message: 'boom', status: 'error', code: 500 })],
    ['no data', JSON.stringify({ message: 'ok', status: 'success', code: 200 })],
    ['no folder name', JSON.stringify({ data: { upload_object_names: { 'mix.wav': SIGNED } }, status: 'success' })],
    ['URLs as a list', JSON.stringify({ data: { upload_folder_name: 'f', upload_object_names: [SIGNED] }, status: 'success' })],
  ])('treats %s as transient', async (_name, body) => {
    api.handle((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(body));
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/malformed/);
  });

  it('treats an undocumented mastering status as transient', async () => {
    api.handle((_request, response) => sendJson(response, 200, { data: { status: 'queued', percentage_complete: 0 }, status: 'success' }));
    expect(await failure(client().masteringProgress(SESSION))).toBeInstanceOf(TransientError);
  });

  it('stops reading a huge answer at 1 MiB', async () => {
    const huge = JSON.stringify({ data: { pad: 'x'.repeat(2 * 1024 * 1024) }, status: 'success' });
    api.handle((_request, response) => response.writeHead(200, { 'content-length': Buffer.byteLength(huge) }).end(huge));
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/larger than 1048576 bytes/);
  });

  it('stops reading an answer that never ends', async () => {
    api.handle((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!response.destroyed && response.write(chunk));
        if (!response.destroyed) response.once('drain', pump);
      };
      response.write('{"data":');
      pump();
    });
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(TransientError);
  });
});

describe('the signed URL in the answer', () => {
  it('refuses an answer for another file', async () => {
    api.handle((_request, response) => sendJson(response, 200, uploadAnswer({ 'other.wav': SIGNED })));
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(UnsafeUrlError);
    expect(error.message).toMatch(/the API answered for another file/);
  });

  it('refuses an answer with an extra file', async () => {
    api.handle((_request, response) => sendJson(response, 200, uploadAnswer({ 'mix.wav': SIGNED, 'extra.wav': SIGNED })));
    expect(await failure(askForUrl())).toBeInstanceOf(UnsafeUrlError);
  });

  it('refuses a URL outside uploadOrigins without quoting its query', async () => {
    api.handle((_request, response) =>
      sendJson(response, 200, uploadAnswer({ 'mix.wav': 'https://storage.googleapis.com.evil.com/b/mix.wav?X-Goog-Signature=abc123' })),
    );
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(UnsafeUrlError);
    expect(error.message).not.toContain('abc123');
  });
});

describe('network failures', () => {
  afterEach(() => api.handle((_request, response) => response.writeHead(500).end()));

  it('times out a silent API within the request timeout', async () => {
    api.handle(() => undefined);
    const started = Date.now();
    const error = await failure(client({ requestTimeoutMs: 300 }).masteringProgress(SESSION));
    expect(error).toBeInstanceOf(TransientError);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('maps a reset connection to TransientError', async () => {
    api.handle((request) => request.socket.destroy());
    const error = await failure(askForUrl());
    expect(error).toBeInstanceOf(TransientError);
    expect(error.cause).toBeDefined();
  });

  it('maps a refused connection to TransientError', async () => {
    const gone = await startLocalServer();
    await gone.close();
    const error = await failure(client({ baseUrl: gone.origin }).masteringProgress(SESSION));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/ECONNREFUSED/);
  });
});

describe('options', () => {
  it.each([
    ['plain http to a remote API', { baseUrl: 'http://platform.cryo-mix.com' }, 'api.baseUrl'],
    ['credentials in the base URL', { baseUrl: 'https://u:p@platform.cryo-mix.com' }, 'api.baseUrl'],
    ['no upload origins', { uploadOrigins: [] }, 'api.uploadOrigins'],
    ['plain http upload origin', { uploadOrigins: ['http://storage.googleapis.com'] }, 'api.uploadOrigins[0]'],
    ['a zero timeout', { requestTimeoutMs: 0 }, 'api.requestTimeoutSeconds'],
    ['a key with a newline', { apiKey: `${API_KEY}\nX-Injected: 1` }, ''],
  ])('refuses %s', (_name, overrides, keyPath) => {
    let error: unknown;
    try {
      client(overrides);
    } catch (caught) {
      error = caught;
    }
    seen.push(error);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).keyPath).toBe(keyPath);
  });

  it('refuses a Session-Id that cannot be a header', async () => {
    await expect(client().masteringProgress('a\r\nb')).rejects.toThrow(TypeError);
  });
});

/** Message, stack and the whole cause chain, as a logger might print them. */
function everythingSaid(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 5; depth += 1) {
    parts.push(current.message, current.stack ?? '', JSON.stringify(current));
    current = current.cause;
  }
  return parts.join('\n');
}

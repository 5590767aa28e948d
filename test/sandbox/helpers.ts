import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import type { Sandbox } from '../../src/sandbox/index.js';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface Envelope {
  data: unknown;
  message: string;
  status: 'success' | 'error';
  code: number;
}

const API_PATHS = {
  'multi-upload': ['POST', '/api/signed-url/multi-upload'],
  mastering: ['POST', '/api/mastering'],
  percentage: ['GET', '/api/percentage'],
  'multi-download': ['POST', '/api/signed-url/multi-download'],
} as const;

export function apiHeaders(sandbox: Sandbox, sessionId: string): Record<string, string> {
  return { 'X-Api-Key': sandbox.apiKey, Source: 'Mastering API', 'Session-Id': sessionId };
}

/** Calls an API endpoint with valid headers unless `headers` overrides them. */
export async function callApi(
  sandbox: Sandbox,
  endpoint: keyof typeof API_PATHS,
  options: { sessionId?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Answer['headers']; envelope: Envelope }> {
  const [method, path] = API_PATHS[endpoint];
  const headers = options.headers ?? apiHeaders(sandbox, options.sessionId ?? 'session-1');
  const answer = await send(`${sandbox.url}${path}`, {
    method,
    headers: method === 'POST' ? { ...headers, 'Content-Type': 'application/json' } : headers,
    body: method === 'POST' ? JSON.stringify(options.body ?? {}) : undefined,
  });
  return { status: answer.status, headers: answer.headers, envelope: JSON.parse(answer.text) as Envelope };
}

export async function send(
  url: string,
  options: {
    method: 'GET' | 'POST' | 'PUT' | 'DELETE';
    headers?: Record<string, string>;
    body?: string | Buffer | Readable | undefined;
    headersTimeout?: number;
  },
): Promise<Answer> {
  const res = await request(url, options);
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

export async function sendBinary(url: string): Promise<{ status: number; headers: Answer['headers']; body: Buffer }> {
  const res = await request(url);
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

/** Asks for a signed PUT URL for one object. */
export async function uploadUrl(
  sandbox: Sandbox,
  sessionId: string,
  contentType = 'audio/wav',
  objectName = 'mix.wav',
): Promise<string> {
  const { status, envelope } = await callApi(sandbox, 'multi-upload', {
    sessionId,
    body: { object_names: [objectName], content_type: contentType },
  });
  if (status !== 200) throw new Error(`multi-upload answered ${status}: ${envelope.message}`);
  const data = envelope.data as { upload_object_names: Record<string, string> };
  const url = data.upload_object_names[objectName];
  if (url === undefined) throw new Error('multi-upload returned no URL');
  return url;
}

export function put(
  url: string,
  body: Buffer,
  contentType = 'audio/wav',
  extra: Record<string, string> = {},
): Promise<Answer> {
  return send(url, { method: 'PUT', headers: { 'Content-Type': contentType, ...extra }, body });
}

/** Uploads `body` for a session; resolves once storage stored it. */
export async function uploadObject(sandbox: Sandbox, sessionId: string, body: Buffer): Promise<void> {
  const answer = await put(await uploadUrl(sandbox, sessionId), body);
  if (answer.status !== 200) throw new Error(`PUT answered ${answer.status}: ${answer.text}`);
}

export function xmlCode(text: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
}

export function bytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

import type { IncomingMessage, ServerResponse } from 'node:http';

/** What an API endpoint answers; sent inside the vendor's JSON envelope. */
export interface ApiReply {
  code: number;
  message: string;
  data?: unknown;
  retryAfterSeconds?: number;
  /** Sent as `Location` (redirect faults). */
  location?: string;
}

/** A storage refusal, sent as Google's XML error document. */
export interface StorageError {
  status: number;
  code: string;
  message: string;
  details?: string;
  retryAfterSeconds?: number;
  /** Sent as `Location` (redirect faults). */
  location?: string;
}

/** The vendor's envelope, in the vendor's member order. */
export function envelopeOf(reply: ApiReply): Record<string, unknown> {
  return {
    data: reply.data ?? null,
    message: reply.message,
    status: reply.code < 400 ? 'success' : 'error',
    code: reply.code,
  };
}

export function sendEnvelope(res: ServerResponse, reply: ApiReply): void {
  const body = JSON.stringify(envelopeOf(reply));
  res.statusCode = reply.code;
  if (reply.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(reply.retryAfterSeconds));
  if (reply.location !== undefined) res.setHeader('Location', reply.location);
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export function sendXmlError(res: ServerResponse, error: StorageError): void {
  const details = error.details === undefined ? '' : `<Details>${escapeXml(error.details)}</Details>`;
  const body =
    `<?xml version='1.0' encoding='UTF-8'?><Error><Code>${error.code}</Code>` +
    `<Message>${escapeXml(error.message)}</Message>${details}</Error>`;
  res.statusCode = error.status;
  if (error.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(error.retryAfterSeconds));
  if (error.location !== undefined) res.setHeader('Location', error.location);
  res.setHeader('Content-Type', 'application/xml');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

const MAX_JSON_BODY = 64 * 1024;

/**
 * Reads a small JSON request body. An empty body reads as `{}` because the
 * vendor's optional-body endpoints accept none; undefined means unreadable.
 */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Keep draining past the limit: leaving the loop early would destroy the socket before the 400 goes out.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_JSON_BODY) chunks.push(chunk);
  }
  if (size > MAX_JSON_BODY) return undefined;
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // A malformed body is the caller's error, answered as 400 like any invalid parameter.
    return undefined;
  }
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

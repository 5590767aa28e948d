import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Google V4 signed URLs with an HMAC key, as storage.googleapis.com issues
 * them: canonical request → string to sign → HMAC chain over date, region,
 * service. Following the real scheme means a client that works here signs
 * nothing itself and keeps every signed byte intact, as it must with Google.
 */

const ALGORITHM = 'GOOG4-HMAC-SHA256';
const ACCESS_ID = 'sandbox';
const REGION = 'auto';
const SERVICE = 'storage';
const REQUEST_TYPE = 'goog4_request';

export interface SigningInput {
  method: 'PUT' | 'GET';
  /** The path exactly as it will appear in the URL, percent-encoded. */
  path: string;
  /** Lower-case name → value of every signed header; `host` is always one. */
  headers: Record<string, string>;
  date: Date;
  expiresSeconds: number;
}

export interface SignedQuery {
  date: Date;
  expiresSeconds: number;
  signedHeaders: string[];
}

export class UrlSigner {
  readonly #secret = randomBytes(32).toString('base64');

  /** The query string, without '?', that signs this request. */
  sign(input: SigningInput): string {
    const googDate = formatGoogDate(input.date);
    const query = new URLSearchParams({
      'X-Goog-Algorithm': ALGORITHM,
      'X-Goog-Credential': `${ACCESS_ID}/${googDate.slice(0, 8)}/${REGION}/${SERVICE}/${REQUEST_TYPE}`,
      'X-Goog-Date': googDate,
      'X-Goog-Expires': String(input.expiresSeconds),
      'X-Goog-SignedHeaders': Object.keys(input.headers).sort().join(';'),
    });
    const signature = this.#signature(input.method, input.path, query, input.headers, googDate);
    return `${canonicalQuery(query)}&X-Goog-Signature=${signature}`;
  }

  /**
   * Recomputes the signature from what the request actually carries. Any
   * change to the method, path, a query parameter or a signed header's value
   * makes it differ.
   */
  verify(method: string, path: string, query: URLSearchParams, headers: Record<string, string>): boolean {
    const given = query.get('X-Goog-Signature') ?? '';
    const unsigned = new URLSearchParams([...query].filter(([name]) => name !== 'X-Goog-Signature'));
    const expected = this.#signature(method, path, unsigned, headers, query.get('X-Goog-Date') ?? '');
    return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
  }

  #signature(
    method: string,
    path: string,
    query: URLSearchParams,
    headers: Record<string, string>,
    googDate: string,
  ): string {
    const names = Object.keys(headers).sort();
    const canonicalRequest = [
      method,
      path,
      canonicalQuery(query),
      names.map((name) => `${name}:${(headers[name] ?? '').trim().replace(/\s+/g, ' ')}`).join('\n'),
      '',
      names.join(';'),
      'UNSIGNED-PAYLOAD',
    ].join('\n');
    const day = googDate.slice(0, 8);
    const scope = `${day}/${REGION}/${SERVICE}/${REQUEST_TYPE}`;
    const stringToSign = [ALGORITHM, googDate, scope, sha256Hex(canonicalRequest)].join('\n');
    let key: Buffer = hmac(`GOOG4${this.#secret}`, day);
    for (const part of [REGION, SERVICE, REQUEST_TYPE]) key = hmac(key, part);
    return createHmac('sha256', key).update(stringToSign).digest('hex');
  }
}

/** Reads the V4 parameters storage needs before it can check a signature; a string says what is wrong. */
export function readSignedQuery(query: URLSearchParams): SignedQuery | string {
  if (query.get('X-Goog-Algorithm') !== ALGORITHM) return `X-Goog-Algorithm must be ${ALGORITHM}`;
  const date = parseGoogDate(query.get('X-Goog-Date') ?? '');
  if (!date) return 'X-Goog-Date is missing or malformed';
  const expires = query.get('X-Goog-Expires') ?? '';
  if (!/^\d{1,6}$/.test(expires) || Number(expires) < 1 || Number(expires) > 604800) {
    return 'X-Goog-Expires must be an integer from 1 to 604800';
  }
  const signedHeaders = (query.get('X-Goog-SignedHeaders') ?? '').split(';').filter(Boolean);
  if (!signedHeaders.includes('host')) return 'X-Goog-SignedHeaders must include host';
  return { date, expiresSeconds: Number(expires), signedHeaders };
}

export function formatGoogDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function parseGoogDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

/** RFC 3986 encoding, sorted by name: the form both signer and verifier hash. */
function canonicalQuery(query: URLSearchParams): string {
  return [...query]
    .map(([name, value]) => `${rfc3986(name)}=${rfc3986(value)}`)
    .sort()
    .join('&');
}

function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

import type { Readable } from 'node:stream';

/**
 * Helpers shared by the API client and the storage transfers (undici for
 * the API and downloads, node:http for the PUT, see put.ts): all must
 * classify failures the same way.
 */

export interface CappedText {
  text: string;
  /** The body was longer than the limit; reading stopped and the stream was destroyed. */
  truncated: boolean;
}

/**
 * Reads at most `limit` bytes of a response body. A server that streams a
 * gigabyte (or never stops) must cost us `limit` bytes of memory, not more.
 */
export async function readCapped(body: Readable, limit: number): Promise<CappedText> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - size));
      // Leaving the loop destroys the stream, which releases the socket.
      return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
}

/**
 * undici errors that are caller mistakes, not the network's: retrying them
 * would loop forever on a bug.
 */
const CALLER_MISTAKES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_INVALID_RETURN_VALUE', 'UND_ERR_NOT_SUPPORTED']);

/**
 * Describes an error from undici when it means the network or the peer
 * failed: resets, refusals, DNS (ENOTFOUND, EAI_AGAIN), TLS handshakes,
 * undici's socket errors and timeouts. These
 * are worth retrying later (SPEC guarantee 4). Undefined for anything else,
 * which the caller rethrows. The text is the code and the library's own
 * message, which never quotes request headers.
 */
export function describeNetworkFailure(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || CALLER_MISTAKES.has(code)) return undefined;
  const network =
    code.startsWith('UND_ERR_') ||
    // errno codes (ECONNRESET, EPIPE…), not Node's own ERR_* codes, which name a bug and must not be retried forever.
    /^E(?!RR_)[A-Z0-9_]+$/.test(code) ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    /CERT|SELF_SIGNED|UNABLE_TO_/.test(code);
  return network ? `${code}: ${error.message}` : undefined;
}

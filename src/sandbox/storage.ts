import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { sendXmlError, type StorageError } from './respond.js';
import type { ApiRequestRecord, Fault } from './types.js';

/** The raw path (as signed, still percent-encoded) and the query of a request. */
export function requestTarget(req: IncomingMessage): { path: string; query: URLSearchParams } {
  const target = req.url ?? '';
  const mark = target.indexOf('?');
  if (mark === -1) return { path: target, query: new URLSearchParams() };
  return { path: target.slice(0, mark), query: new URLSearchParams(target.slice(mark + 1)) };
}

export function injectedError(fault: Extract<Fault, { kind: 'status' }>): StorageError {
  const reason = STATUS_CODES[fault.status] ?? 'Error';
  return {
    status: fault.status,
    code: reason.replace(/[^A-Za-z]/g, ''),
    message: `${reason} (injected by the sandbox)`,
    retryAfterSeconds: fault.retryAfterSeconds,
  };
}

/**
 * Reads and discards the request body before refusing it. Answering early
 * and closing would race the client's upload, which would then see a reset
 * or the refusal depending on timing; tests need the refusal every time.
 */
export function refuseAfterBody(
  req: IncomingMessage,
  res: ServerResponse,
  record: ApiRequestRecord,
  error: StorageError,
): void {
  req.once('end', () => {
    record.status = error.status;
    sendXmlError(res, error);
  });
  req.resume();
}

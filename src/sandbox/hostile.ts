import { STATUS_CODES, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { envelopeOf, type ApiReply, type StorageError } from './respond.js';
import type { Fault, HostileUploadFault } from './types.js';

/**
 * Answers a client must refuse (issue 3, scenario 8): the API or storage
 * pointing it elsewhere, or a 200 whose body is not what the API documents.
 * Each keeps as much of the honest answer as it can, so a client is caught
 * by the one thing that is wrong and not by an easier tell.
 */

type RedirectFault = Extract<Fault, { kind: 'redirect' }>;

/** Members of a successful multi-upload `data`. */
export interface UploadData {
  upload_folder_name: string;
  upload_object_names: Record<string, string>;
}

export function redirectReply(fault: RedirectFault): ApiReply {
  const status = fault.status ?? 307;
  return { code: status, message: `${STATUS_CODES[status] ?? 'Redirect'} (injected by the sandbox)`, location: fault.location };
}

/** Google's wording for a redirect it never sends to a signed PUT; only the status and Location matter. */
export function redirectStorageError(fault: RedirectFault): StorageError {
  const status = fault.status ?? 307;
  return {
    status,
    code: 'TemporaryRedirect',
    message: 'Please re-send this request to the specified temporary endpoint (injected by the sandbox).',
    location: fault.location,
  };
}

/**
 * The `data` a hostile multi-upload answers instead of `honest`.
 * `issueFor(name)` signs a genuine URL for another object of the same folder.
 */
export function hostileUploadData(fault: Fault | undefined, honest: UploadData, issueFor: (name: string) => string): Record<string, unknown> {
  const [asked = ''] = Object.keys(honest.upload_object_names);
  switch (fault?.kind) {
    case 'signed-url':
      return { ...honest, upload_object_names: { [asked]: fault.url } };
    case 'other-object': {
      const other = fault.objectName ?? `other-${asked}`;
      return { ...honest, upload_object_names: { [other]: issueFor(other) } };
    }
    case 'missing-field':
      return Object.fromEntries(Object.entries(honest).filter(([name]) => name !== fault.field));
    default:
      return { ...honest };
  }
}

type EnvelopeFault = Extract<HostileUploadFault, { kind: 'malformed-json' | 'huge-json' | 'missing-field' }>;

/** True when the fault spoils the envelope itself rather than its `data`. */
export function spoilsEnvelope(fault: Fault | undefined): fault is EnvelopeFault {
  return fault?.kind === 'malformed-json' || fault?.kind === 'huge-json' || (fault?.kind === 'missing-field' && fault.field === 'data');
}

/** Sends `reply` (a 200) with its envelope spoiled as `fault` says. */
export async function sendSpoiledEnvelope(res: ServerResponse, reply: ApiReply, fault: EnvelopeFault): Promise<void> {
  const envelope = envelopeOf(reply);
  res.statusCode = reply.code;
  res.setHeader('Content-Type', 'application/json');
  if (fault.kind === 'huge-json') return sendPadded(res, envelope, fault.bytes);
  let body: string;
  if (fault.kind === 'malformed-json') {
    const text = JSON.stringify(envelope);
    body = text.slice(0, Math.floor(text.length / 2));
  } else {
    body = JSON.stringify(Object.fromEntries(Object.entries(envelope).filter(([name]) => name !== 'data')));
  }
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(body);
}

const BLOCK = Buffer.alloc(64 * 1024, 'x');

/**
 * The envelope with a `padding` member after the honest ones, `bytes` long
 * in all (or just long enough for the envelope). It streams with
 * backpressure, so gigabytes cost the sandbox one block; a client that stops
 * reading ends the pipeline early, which the request listener handles.
 */
async function sendPadded(res: ServerResponse, envelope: Record<string, unknown>, bytes: number): Promise<void> {
  const head = Buffer.from(`${JSON.stringify(envelope).slice(0, -1)},"padding":"`);
  const tail = Buffer.from('"}');
  const padding = Math.max(0, bytes - head.length - tail.length);
  res.setHeader('Content-Length', head.length + padding + tail.length);
  function* chunks(): Generator<Buffer> {
    yield head;
    for (let left = padding; left > 0; left -= BLOCK.length) yield left >= BLOCK.length ? BLOCK : BLOCK.subarray(0, left);
    yield tail;
  }
  await pipeline(Readable.from(chunks()), res);
}

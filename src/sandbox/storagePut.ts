import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SandboxContext } from './context.js';
import { Crc32c } from './crc32c.js';
import { redirectStorageError } from './hostile.js';
import type { Session } from './state.js';
import { authorize } from './storageAuth.js';
import { injectedError, refuseAfterBody, requestTarget } from './storage.js';
import { parseObjectPath } from './storageUrls.js';
import type { ApiRequestRecord } from './types.js';

/**
 * A single-request upload to a signed PUT URL. The body is hashed as it
 * streams and then dropped: memory stays flat whatever the file size, and
 * only the hashes are kept.
 */
export function handlePut(ctx: SandboxContext, req: IncomingMessage, res: ServerResponse): void {
  const key = parseObjectPath(ctx, requestTarget(req).path);
  const session = key?.area === 'uploads' ? ctx.state.sessionByUploadFolder(key.folder) : undefined;
  const record = ctx.state.record('put', session?.id ?? null);
  const fault = ctx.faults.take('put');

  if (fault?.kind === 'reset') return cutAfter(req, fault.afterBytes, () => req.socket.destroy());
  if (fault?.kind === 'stall' && fault.forMs === undefined) return cutAfter(req, fault.afterBytes, () => req.pause());
  if (fault?.kind === 'status') return refuseAfterBody(req, res, record, injectedError(fault));
  if (fault?.kind === 'redirect') return refuseAfterBody(req, res, record, redirectStorageError(fault));

  const refusal = authorize(ctx, req, 'PUT');
  if (refusal) return refuseAfterBody(req, res, record, refusal);
  if (!key || !session) {
    // The signature covers the path and only issued paths are signed, so this
    // cannot happen once authorize() passed; it narrows the types.
    return refuseAfterBody(req, res, record, {
      status: 404,
      code: 'NoSuchBucket',
      message: 'The specified bucket does not exist.',
    });
  }
  if (req.headers['content-length'] === undefined) {
    // Google accepts chunked uploads, but our client must never send one
    // (SPEC: exact Content-Length); refusing them here catches a regression.
    return refuseAfterBody(req, res, record, {
      status: 411,
      code: 'MissingContentLength',
      message: 'You must provide the Content-Length HTTP header.',
    });
  }
  receive(ctx, req, res, record, session, key.name, fault?.kind === 'bad-md5');
  if (fault?.kind === 'stall') {
    const { forMs } = fault;
    cutAfter(req, fault.afterBytes, () => {
      req.pause();
      setTimeout(() => req.resume(), forMs).unref();
    });
  }
}

/** Lets `afterBytes` of body arrive, then runs `cut` once; the request is never answered. */
function cutAfter(req: IncomingMessage, afterBytes: number, cut: () => void): void {
  if (afterBytes === 0) return cut();
  let received = 0;
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    if (received < afterBytes) return;
    req.off('data', onData);
    req.off('end', onEnd);
    cut();
  };
  // A body shorter than afterBytes is cut at its end, before any answer.
  const onEnd = (): void => cut();
  req.on('data', onData);
  req.once('end', onEnd);
}

function receive(
  ctx: SandboxContext,
  req: IncomingMessage,
  res: ServerResponse,
  record: ApiRequestRecord,
  session: Session,
  objectName: string,
  badMd5: boolean,
): void {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  const crc32c = new Crc32c();
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    sha256.update(chunk);
    md5.update(chunk);
    crc32c.update(chunk);
  });
  // Node's parser emits 'end' only once Content-Length bytes arrived; a body
  // cut short ends in 'close' alone, so no object is stored for it.
  req.once('end', () => {
    const md5Digest = md5.digest();
    ctx.state.addObject(session, {
      sessionId: session.id,
      uploadFolderName: session.uploadFolderName,
      objectName,
      size,
      sha256: sha256.digest('hex'),
      md5: md5Digest.toString('base64'),
      contentType: req.headers['content-type'] ?? '',
    });
    const reported = badMd5 ? md5Digest.map((byte) => byte ^ 0xff) : md5Digest;
    record.status = 200;
    res.statusCode = 200;
    res.setHeader('x-goog-hash', [`crc32c=${crc32c.digestBase64()}`, `md5=${reported.toString('base64')}`]);
    res.setHeader('ETag', `"${reported.toString('hex')}"`);
    res.setHeader('x-goog-stored-content-length', String(size));
    res.setHeader('Content-Length', 0);
    res.end();
  });
}

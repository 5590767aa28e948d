import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SandboxContext } from './context.js';
import { Crc32c } from './crc32c.js';
import { RESULT_FILES, type ResultFile } from './mastering.js';
import { sendXmlError, type StorageError } from './respond.js';
import { renderResult } from './results.js';
import { injectedError, requestTarget } from './storage.js';
import { authorize } from './storageAuth.js';
import { parseObjectPath } from './storageUrls.js';

/** A download from a signed GET URL issued by multi-download. */
export function handleGet(ctx: SandboxContext, req: IncomingMessage, res: ServerResponse): void {
  const key = parseObjectPath(ctx, requestTarget(req).path);
  const session = key?.area === 'processed' ? ctx.state.sessionByResultFolder(key.folder) : undefined;
  const record = ctx.state.record('get', session?.id ?? null);
  const refuse = (error: StorageError): void => {
    record.status = error.status;
    sendXmlError(res, error);
  };

  const fault = ctx.faults.take('get');
  if (fault?.kind === 'status') return refuse(injectedError(fault));
  const refusal = authorize(ctx, req, 'GET');
  if (refusal) return refuse(refusal);
  const name = RESULT_FILES.find((file): file is ResultFile => file === key?.name);
  // Only result paths of completed jobs are ever signed, and the signature covers the path.
  if (!session || !name) {
    return refuse({ status: 404, code: 'NoSuchKey', message: 'The specified key does not exist.' });
  }

  const result = renderResult(name, session);
  record.status = 200;
  res.statusCode = 200;
  res.setHeader('Content-Type', result.contentType);
  res.setHeader('Content-Length', result.body.length);
  res.setHeader('x-goog-hash', [
    `crc32c=${new Crc32c().update(result.body).digestBase64()}`,
    `md5=${createHash('md5').update(result.body).digest('base64')}`,
  ]);
  if (fault?.kind === 'stall') {
    // A stalled download: part of the body, then silence until the client gives up (or close()), or until a hiccup ends.
    res.write(result.body.subarray(0, fault.afterBytes));
    if (fault.forMs !== undefined) setTimeout(() => res.end(result.body.subarray(fault.afterBytes)), fault.forMs).unref();
  } else {
    res.end(result.body);
  }
}

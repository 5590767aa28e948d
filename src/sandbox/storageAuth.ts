import type { IncomingMessage } from 'node:http';
import type { SandboxContext } from './context.js';
import type { StorageError } from './respond.js';
import { readSignedQuery } from './signing.js';
import { requestTarget } from './storage.js';

/**
 * Checks a storage request against its signed URL the way Google does, in
 * Google's order: credentials present, well-formed, not expired, signed
 * headers present and no unsigned `x-goog-*`/`Content-MD5`, then the
 * signature itself. Undefined means the request may proceed.
 */
export function authorize(ctx: SandboxContext, req: IncomingMessage, method: 'PUT' | 'GET'): StorageError | undefined {
  const { path, query } = requestTarget(req);
  if (!query.has('X-Goog-Signature') && !query.has('X-Goog-Algorithm')) {
    const permission = method === 'PUT' ? 'storage.objects.create' : 'storage.objects.get';
    return {
      status: 403,
      code: 'AccessDenied',
      message: 'Access denied.',
      details: `Anonymous caller does not have ${permission} access to the Google Cloud Storage object.`,
    };
  }
  const signed = readSignedQuery(query);
  if (typeof signed === 'string') {
    return { status: 400, code: 'InvalidArgument', message: 'Invalid argument.', details: signed };
  }
  const expiresAt = new Date(signed.date.getTime() + signed.expiresSeconds * 1000);
  if (Date.now() > expiresAt.getTime() || ctx.state.expiredSignatures.has(query.get('X-Goog-Signature') ?? '')) {
    return {
      status: 400,
      code: 'ExpiredToken',
      message: 'Invalid argument.',
      details: `The provided token has expired. Request signature expired at: ${expiresAt.toISOString()}`,
    };
  }
  const headers: Record<string, string> = {};
  for (const name of signed.signedHeaders) {
    const value = req.headers[name];
    if (typeof value !== 'string') {
      return malformedHeader(`Header was included in signedheaders, but not in the request: ${name}`);
    }
    headers[name] = value;
  }
  const unsigned = Object.keys(req.headers).find(
    (name) => (name.startsWith('x-goog-') || name === 'content-md5') && !signed.signedHeaders.includes(name),
  );
  if (unsigned !== undefined) {
    return malformedHeader(`Header was included in the request, but not in signedheaders: ${unsigned}`);
  }
  if (!ctx.signer.verify(method, path, query, headers)) {
    return {
      status: 403,
      code: 'SignatureDoesNotMatch',
      message:
        'The request signature we calculated does not match the signature you provided. ' +
        'Check your Google secret key and signing method.',
    };
  }
  return undefined;
}

function malformedHeader(details: string): StorageError {
  return { status: 400, code: 'MalformedSecurityHeader', message: 'Your request has a malformed header.', details };
}

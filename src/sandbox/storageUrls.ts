import type { SandboxContext } from './context.js';

/**
 * Object layout in the emulated bucket, mirroring the vendor's:
 * `<bucket>/uploads/<folder>/<name>` for mixes, `<bucket>/processed/<folder>/<name>` for results.
 */

const BUCKET = 'cryomix-sandbox';

export interface ObjectKey {
  area: 'uploads' | 'processed';
  folder: string;
  name: string;
}

export interface IssuedUrl {
  url: string;
  signature: string;
}

/** A PUT URL bound to `contentType`, as the API's multi-upload issues it. */
export function issueUploadUrl(
  ctx: SandboxContext,
  key: ObjectKey,
  contentType: string,
  expiresSeconds: number,
): IssuedUrl {
  return issue(ctx, 'PUT', key, { 'content-type': contentType }, expiresSeconds);
}

export function issueDownloadUrl(ctx: SandboxContext, key: ObjectKey, expiresSeconds: number): IssuedUrl {
  return issue(ctx, 'GET', key, {}, expiresSeconds);
}

/** The object a storage request path names; undefined when it is outside the bucket's layout. */
export function parseObjectPath(ctx: SandboxContext, rawPath: string): ObjectKey | undefined {
  const prefix = `${ctx.storageOrigin.pathname}${BUCKET}/`;
  if (!rawPath.startsWith(prefix)) return undefined;
  const [area, folder, encodedName, ...rest] = rawPath.slice(prefix.length).split('/');
  if ((area !== 'uploads' && area !== 'processed') || !folder || !encodedName || rest.length > 0) return undefined;
  try {
    return { area, folder, name: decodeURIComponent(encodedName) };
  } catch {
    // Broken percent-encoding cannot name any object we issued.
    return undefined;
  }
}

function issue(
  ctx: SandboxContext,
  method: 'PUT' | 'GET',
  key: ObjectKey,
  headers: Record<string, string>,
  expiresSeconds: number,
): IssuedUrl {
  const path = `${ctx.storageOrigin.pathname}${BUCKET}/${key.area}/${key.folder}/${encodeURIComponent(key.name)}`;
  const query = ctx.signer.sign({
    method,
    path,
    headers: { ...headers, host: ctx.storageOrigin.host },
    date: new Date(),
    expiresSeconds,
  });
  const signature = new URLSearchParams(query).get('X-Goog-Signature') ?? '';
  return { url: `${ctx.storageOrigin.origin}${path}?${query}`, signature };
}

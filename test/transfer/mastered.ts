import type { SignedDownload } from '../../src/cryomix/api.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { sandboxClient } from '../cryomix/sandboxClient.js';
import { bytes, uploadObject } from '../sandbox/helpers.js';

/**
 * Uploads a mix for `sessionId`, masters it through the client and returns
 * the signed download URLs: the loop the pipeline runs, minus the pipeline.
 */
export async function masteredSession(sandbox: Sandbox, sessionId: string): Promise<Map<string, SignedDownload>> {
  const client = sandboxClient(sandbox);
  await uploadObject(sandbox, sessionId, bytes(5000));
  await client.startMastering(sessionId, { meq: 6, mca: -1 });
  for (;;) {
    const progress = await client.masteringProgress(sessionId);
    if (progress?.status === 'completed') break;
    if (progress?.status !== 'pending' && progress?.status !== 'processing') throw new Error(`mastering ended ${progress?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return client.requestDownloadUrls(sessionId, 600);
}

export function urlOf(urls: Map<string, SignedDownload>, name: string): URL {
  const url = urls.get(name)?.url;
  if (url === undefined) throw new Error(`no download URL for ${name}`);
  return url;
}

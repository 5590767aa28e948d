import { CryomixClient } from '../../src/cryomix/client.js';
import type { Sandbox } from '../../src/sandbox/index.js';

/** A client for the sandbox, accepting only its storage, as the daemon's `--sandbox` does. */
export function sandboxClient(sandbox: Sandbox): CryomixClient {
  return new CryomixClient({
    baseUrl: sandbox.url,
    apiKey: sandbox.apiKey,
    uploadOrigins: [sandbox.storageOrigin],
    requestTimeoutMs: 5_000,
  });
}

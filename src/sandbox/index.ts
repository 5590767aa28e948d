import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SandboxContext } from './context.js';
import { FaultQueue } from './faults.js';
import { resolveOptions } from './options.js';
import { createRequestListener } from './server.js';
import { UrlSigner } from './signing.js';
import { SandboxState } from './state.js';
import type { Sandbox, SandboxOptions } from './types.js';

export type {
  ApiRequestRecord,
  Endpoint,
  Fault,
  FaultInjector,
  FaultTarget,
  HostileUploadFault,
  RedirectStatus,
  Sandbox,
  SandboxOptions,
  StoredObject,
} from './types.js';
export { SandboxOptionError } from './options.js';

/**
 * Starts the Cryo-mix API and signed-URL storage emulator on one loopback
 * port: the API at `/api/*`, storage under `/storage/`, test controls under
 * `/_sandbox/*`.
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const { host, port, apiKey, masteringSeconds } = resolveOptions(options);
  // No request timeout: a stalled upload must last until the client gives up.
  const server = createServer({ requestTimeout: 0 });
  await listen(server, port, host);
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const ctx: SandboxContext = {
    state: new SandboxState(),
    faults: new FaultQueue(),
    signer: new UrlSigner(),
    apiKey,
    masteringSeconds,
    storageOrigin: new URL('/storage/', url),
  };
  server.on('request', createRequestListener(ctx));

  let closing: Promise<void> | undefined;
  return {
    url,
    apiKey,
    storageOrigin: ctx.storageOrigin.href,
    faults: ctx.faults,
    objects: () => ctx.state.objects.map((object) => ({ ...object })),
    requests: () => ctx.state.requests(),
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

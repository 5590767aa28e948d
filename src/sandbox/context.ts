import type { FaultQueue } from './faults.js';
import type { UrlSigner } from './signing.js';
import type { SandboxState } from './state.js';

/** What every handler of one running sandbox shares. */
export interface SandboxContext {
  readonly state: SandboxState;
  readonly faults: FaultQueue;
  readonly signer: UrlSigner;
  readonly apiKey: string;
  readonly masteringSeconds: number;
  /** e.g. http://127.0.0.1:41234/storage/ — known only once the server listens. */
  readonly storageOrigin: URL;
}

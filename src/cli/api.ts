import { loadApiKey, type Config } from '../config/index.js';
import type { CryomixApi } from '../cryomix/api.js';
import { CryomixClient, type ApiAnswer } from '../cryomix/client.js';
import type { Sandbox } from '../sandbox/index.js';

export interface ApiTarget {
  config: Config;
  apiKey: string;
  api: CryomixApi;
  sandbox?: Sandbox;
  close(): Promise<void>;
}

/**
 * Where API calls go: the configured service with the user's key, or, with
 * `--sandbox`, an embedded emulator on loopback and its own key, so a new
 * user can try everything without an account.
 */
export async function apiTarget(configured: Config, useSandbox: boolean, onAnswer?: (answer: ApiAnswer) => void): Promise<ApiTarget> {
  if (!useSandbox) {
    const apiKey = loadApiKey(configured);
    return { config: configured, apiKey, api: clientFor(configured, apiKey, onAnswer), close: async () => {} };
  }
  // Only --sandbox loads the emulator.
  const { startSandbox } = await import('../sandbox/index.js');
  const sandbox = await startSandbox();
  const config = { ...configured, api: { ...configured.api, baseUrl: sandbox.url, uploadOrigins: [sandbox.storageOrigin] } };
  return { config, apiKey: sandbox.apiKey, api: clientFor(config, sandbox.apiKey, onAnswer), sandbox, close: () => sandbox.close() };
}

function clientFor(config: Config, apiKey: string, onAnswer: ((answer: ApiAnswer) => void) | undefined): CryomixApi {
  return new CryomixClient({
    ...(onAnswer ? { onAnswer } : {}),
    baseUrl: config.api.baseUrl,
    apiKey,
    ...(config.api.origin ? { origin: config.api.origin } : {}),
    uploadOrigins: config.api.uploadOrigins,
    requestTimeoutMs: config.api.requestTimeoutSeconds * 1000,
  });
}

import { startSandbox } from '../sandbox/index.js';
import { EXIT_OK } from './exitCodes.js';

/** The emulator alone, for trying the API by hand or pointing another client at it. */
export async function sandboxCommand(options: { port?: string }): Promise<number> {
  const port = options.port === undefined ? 0 : Number(options.port);
  const sandbox = await startSandbox({ port });
  process.stdout.write(
    [
      `Cryo-mix sandbox listening on ${sandbox.url}`,
      `  API key:       ${sandbox.apiKey}  (a sandbox key, not a secret)`,
      `  signed URLs:   ${sandbox.storageOrigin}…`,
      `  inspect:       GET ${sandbox.url}/_sandbox/objects, /_sandbox/requests; POST /_sandbox/faults`,
      'Press Ctrl-C to stop.',
    ].join('\n') + '\n',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await sandbox.close();
  return EXIT_OK;
}

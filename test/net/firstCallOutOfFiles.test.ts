import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useSandbox, useLocalServer } from '../helpers/servers.js';
import { useTempDir } from '../helpers/tempDir.js';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const tempDir = useTempDir('cryomix-first-call-');

/**
 * A child process (the built code, as the daemon runs it) uses up its file
 * descriptors, makes a call that must fail with EMFILE, frees them, and makes
 * the call again. The second call must work: the daemon's first API call can
 * land in a burst of files that holds every descriptor, and it must not stay
 * broken after the burst is over.
 */
function callTwiceAroundEmfile(setup: string, call: string): Promise<{ first: string; second: string }> {
  const script = `
    import { closeSync, openSync } from 'node:fs';
    ${setup}
    const call = async () => { ${call} };
    const outcome = () => call().then(() => 'ok', (error) => String(error?.message ?? error));
    const held = [];
    try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
    const first = await outcome();
    for (const fd of held) closeSync(fd);
    const second = await outcome();
    process.stdout.write(JSON.stringify({ first, second }));
  `;
  return new Promise((resolve, reject) => {
    // A low limit keeps the descriptors the child must hold to a few hundred.
    execFile('bash', ['-c', 'ulimit -n 256 && exec "$@"', 'child', process.execPath, '--input-type=module', '-e', script], { cwd: DIST }, (error, stdout, stderr) => {
      if (error) reject(new Error(`the child failed: ${stderr}`));
      else resolve(JSON.parse(stdout) as { first: string; second: string });
    });
  });
}

describe('a first call made while the process is out of file descriptors', () => {
  const sandbox = useSandbox();
  const server = useLocalServer();

  it('does not break later API calls', async () => {
    const outcome = await callTwiceAroundEmfile(
      `import { CryomixClient } from './cryomix/client.js';
      const api = new CryomixClient({ baseUrl: ${JSON.stringify(sandbox.url)}, apiKey: ${JSON.stringify(sandbox.apiKey)}, uploadOrigins: [${JSON.stringify(sandbox.storageOrigin)}], requestTimeoutMs: 5000 });`,
      `await api.requestUploadUrl({ sessionId: 'emfile-session', objectName: 'Mix.wav', contentType: 'audio/wav', expirationSeconds: 3600 });`,
    );
    expect(outcome.first).toMatch(/EMFILE/);
    expect(outcome.second).toBe('ok');
  });

  it('does not break later downloads', async () => {
    server.handle((_request, response) => response.writeHead(200, { 'content-length': '5' }).end('bytes'));
    const outcome = await callTwiceAroundEmfile(
      `import { downloadFile } from './transfer/download.js';`,
      `await downloadFile({ url: new URL(${JSON.stringify(`${server.origin}/master.wav`)}), directory: ${JSON.stringify(tempDir())}, fileName: 'master.wav', partialTag: 'job-1', stallTimeoutMs: 5000 });`,
    );
    expect(outcome.first).toMatch(/EMFILE/);
    expect(outcome.second).toBe('ok');
  });
});

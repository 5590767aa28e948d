import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';
import { sendJson, startLocalServer, type LocalServer } from '../cryomix/localServer.js';
import { createWorkspace, runCliAsync, useDaemons, type Workspace } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';

// What `check` reads from the API beyond "is the key accepted": the Origin sent with it and the Date header.
// (cli.test.ts covers a rejected key and a missing folder against the sandbox.)

const tempDir = useTempDir('cryomix-check-');
const { startSandbox } = useDaemons();

interface Report {
  ok: boolean;
  checks: { verdict: string; check: string; detail: string }[];
}

let sandbox: Sandbox;
let api: LocalServer;
let workspace: Workspace;

beforeEach(async () => {
  sandbox = await startSandbox();
  api = await startLocalServer();
  workspace = createWorkspace(tempDir(), sandbox);
});

afterEach(async () => {
  await api.close();
});

/** The configured API is the loopback server, whose answers each test sets. */
function againstLoopbackApi(extra: Record<string, unknown> = {}): Workspace {
  return { ...createWorkspace(workspace.dir, sandbox, { api: { baseUrl: api.origin, ...extra } }), env: { ...workspace.env, CRYOMIX_API_KEY: 'a-key-the-api-refuses' } };
}

async function check(target: Workspace, args: string[] = []): Promise<{ status: number | null; report: Report }> {
  const result = await runCliAsync(target, ['check', '--json', ...args]);
  return { status: result.status, report: JSON.parse(result.stdout) as Report };
}

const line = (report: Report, name: string) => report.checks.find((c) => c.check === name);

describe('check --sandbox', () => {
  it('passes with every line PASS or WARN, including the clock against the sandbox and the inotify limits', async () => {
    const result = await runCliAsync(workspace, ['check', '--sandbox']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).not.toMatch(/^FAIL/m);
    expect(result.stdout).toMatch(/^PASS {2}API key: accepted by the embedded sandbox$/m);
    expect(result.stdout).toMatch(/^PASS {2}clock: (in step with|\d+ s (ahead of|behind)) the embedded sandbox's clock/m);
    expect(result.stdout).toMatch(/^PASS {2}file system of .*inbox: watched with inotify: polling: auto, and \S+ at \S+ is local/m);
    expect(result.stdout).toMatch(/^(PASS|WARN) {2}inotify watches: 1 needed \(one per watched folder/m);
    expect(result.stdout).toMatch(/^(PASS|WARN) {2}inotify instances: 1 needed/m);
  });
});

describe('check against an API', () => {
  it('fails a key refused with an Origin, naming both fixes', async () => {
    api.handle((_request, response) => sendJson(response, 401, { status: 'error', message: 'unauthorized client', code: 401, data: null }));
    const { status, report } = await check(againstLoopbackApi({ origin: 'https://studio.example.com' }));
    expect(status).toBe(1);
    expect(report.ok).toBe(false);
    expect(line(report, 'API key')).toEqual({
      verdict: 'FAIL',
      check: 'API key',
      detail: expect.stringMatching(
        /^rejected \(401\) with Origin https:\/\/studio\.example\.com: either the key is wrong \(set the right key in CRYOMIX_API_KEY.*\) or https:\/\/studio\.example\.com is not among the domains the key is bound to/,
      ),
    });
  });

  it('says a key accepted with an Origin proves the origin too', async () => {
    const origins: (string | undefined)[] = [];
    api.handle((request, response) => {
      origins.push(request.headers.origin);
      // A made-up Session-Id earns a 400: the key and the origin got past the API's checks.
      sendJson(response, 400, { status: 'error', message: 'Session-Id not found', code: 400, data: null });
    });
    const { report } = await check(againstLoopbackApi({ origin: 'https://studio.example.com' }));
    expect(origins).toEqual(['https://studio.example.com']);
    expect(line(report, 'API key')).toMatchObject({ verdict: 'PASS', detail: 'accepted by the Cryo-mix API, sent with Origin https://studio.example.com, so that origin is allowed too' });
    expect(line(report, 'clock')).toMatchObject({ verdict: 'PASS' });
  });

  it('warns when the local clock is an hour off the API\'s Date header, saying uploads are not affected, and fails two days off, naming the NTP fix', async () => {
    let offMs = 3600_000;
    api.handle((_request, response) => {
      sendJson(response, 400, { status: 'error', message: 'Session-Id not found', code: 400, data: null }, { date: new Date(Date.now() - offMs).toUTCString() });
    });
    const anHour = await check(againstLoopbackApi());
    expect(line(anHour.report, 'API key')).toMatchObject({ verdict: 'PASS' });
    expect(line(anHour.report, 'clock')).toEqual({
      verdict: 'WARN',
      check: 'clock',
      detail: expect.stringMatching(/^60 min ahead of the Cryo-mix API's clock .*uploads are not affected.*sudo timedatectl set-ntp true/),
    });
    offMs = 2 * 86_400_000;
    const twoDays = await check(againstLoopbackApi());
    expect(twoDays.status).toBe(1);
    expect(line(twoDays.report, 'clock')).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/^48\.0 h ahead .*HTTPS certificates may be refused .*sudo timedatectl set-ntp true/) });
  });

  it('warns that the clock was not checked when the API cannot be reached', async () => {
    await api.close();
    const { status, report } = await check(againstLoopbackApi({ requestTimeoutSeconds: 2 }));
    expect(status).toBe(1);
    expect(line(report, 'API key')).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/^could not reach the API/) });
    expect(line(report, 'clock')).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/^not checked/) });
    api = await startLocalServer();
  });
});

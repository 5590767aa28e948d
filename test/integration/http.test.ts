import { writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, runCliAsync, useDaemons, type DaemonProcess, type Workspace, type WorkspaceOptions } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { freePort } from '../helpers/ports.js';

const tempDir = useTempDir('cryomix-http-');
const { startSandbox, startDaemon } = useDaemons();

/** A daemon with the listener on a free loopback port; resolves with the URL it logged. */
async function start(options: WorkspaceOptions = {}): Promise<{ sandbox: Sandbox; daemon: DaemonProcess; workspace: Workspace; url: string }> {
  const sandbox = await startSandbox();
  const workspace = createWorkspace(tempDir(), sandbox, { http: { listen: '127.0.0.1:0' }, ...options });
  const daemon = startDaemon(workspace);
  const line = await daemon.waitForLog((r) => typeof r.url === 'string');
  return { sandbox, daemon, workspace, url: line.url as string };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; type: string | null }> {
  const response = await fetch(url, { headers });
  return { status: response.status, text: await response.text(), type: response.headers.get('content-type') };
}

/** The value of one sample line of a Prometheus text exposition, e.g. `cryomix_watch_files{state="done"}`. */
function sample(metrics: string, series: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('the HTTP listener', () => {
  it('serves health, metrics and the status page while files flow', async () => {
    const { sandbox, daemon, workspace, url } = await start();
    expect(await get(`${url}/healthz`)).toMatchObject({ status: 200, text: 'ok\n' });

    sandbox.faults.add({ target: 'put', kind: 'status', status: 503 });
    const mix = join(workspace.inbox, 'Night <Drive> & "Co".wav');
    const bytes = pcmWav(50_000);
    writeFileSync(mix, bytes);
    // Not the DB: metrics, like the log, hear of a transition once its commit is on disk (group commit), a few ms after `list` shows it.
    await daemon.waitForLog((r) => r.event === 'transition' && r.file === mix && r.to === 'done');

    const metrics = await get(`${url}/metrics`);
    expect(metrics.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(metrics.text, 'cryomix_watch_files{state="done"}')).toBe(1);
    expect(sample(metrics.text, 'cryomix_watch_uploaded_bytes_total')).toBe(bytes.length);
    expect(sample(metrics.text, 'cryomix_watch_upload_duration_seconds_count')).toBe(1);
    expect(sample(metrics.text, 'cryomix_watch_retries_total{reason="server_error"}')).toBe(1);
    expect(sample(metrics.text, 'cryomix_watch_api_responses_total{endpoint="POST /api/signed-url/multi-upload",code="200"}')).toBe(2);
    expect(sample(metrics.text, 'cryomix_watch_paused')).toBe(0);
    expect(sample(metrics.text, 'cryomix_watch_queue_depth')).toBe(0);
    expect(sample(metrics.text, 'cryomix_watch_oldest_waiting_seconds')).toBe(0);
    expect(sample(metrics.text, 'cryomix_watch_last_upload_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(metrics.text).toContain('cryomix_watch_process_resident_memory_bytes');

    const page = await get(`${url}/`);
    expect(page.type).toBe('text/html; charset=utf-8');
    // The name is shown, escaped: a file name is never markup.
    expect(page.text).toContain('Night &lt;Drive&gt; &amp; &quot;Co&quot;.wav');
    expect(page.text).not.toContain('<Drive>');
    expect(page.text).toContain('<meta http-equiv="refresh"');
    expect(await get(`${url}/nothing-here`)).toMatchObject({ status: 404 });
  });

  it('answers 503 with the reason while the API refuses the key', async () => {
    const { sandbox, workspace, url } = await start();
    sandbox.faults.setUnauthorized(true);
    writeFileSync(join(workspace.inbox, 'refused.wav'), pcmWav(20_000));
    let health = await get(`${url}/healthz`);
    for (const deadline = Date.now() + 15_000; health.status === 200 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      health = await get(`${url}/healthz`);
    }
    expect(health.status).toBe(503);
    expect(health.text).toMatch(/^paused: API key rejected \(/);
    expect(sample((await get(`${url}/metrics`)).text, 'cryomix_watch_paused')).toBe(1);
    expect(sample((await get(`${url}/metrics`)).text, 'cryomix_watch_queue_depth')).toBe(1);
    expect((await get(`${url}/`)).text).toContain('paused: API key rejected');
  });

  it('answers 503 naming a watched folder that is not there', async () => {
    const { url } = await start({ folder: { path: '/nonexistent/cryomix-share' } });
    const health = await get(`${url}/healthz`);
    expect(health).toMatchObject({ status: 503, text: expect.stringMatching(/^not watching \/nonexistent\/cryomix-share: missing or unreadable for \d+ s\n$/) });
  });

  it('answers only to names of this machine when there is no token (no DNS rebinding)', async () => {
    const { url } = await start();
    const status = (host: string) =>
      new Promise<number | undefined>((resolve, reject) => {
        const { hostname, port } = new URL(url);
        httpGet({ hostname, port, path: '/healthz', headers: { host } }, (response) => {
          response.resume();
          resolve(response.statusCode);
        }).on('error', reject);
      });
    expect(await status('rebind.attacker.example:9464')).toBe(421);
    expect(await status(`localhost:${new URL(url).port}`)).toBe(200);
  });

  it('asks for the token when one is configured, by Bearer or as the Basic password', async () => {
    const token = 'studio-token-7c1f0b2e9d';
    const { daemon, url } = await start({ http: { listen: '127.0.0.1:0', token } });
    const refused = await fetch(`${url}/healthz`);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect((await get(`${url}/healthz`, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get(`${url}/healthz`, { authorization: `Bearer ${token}` })).status).toBe(200);
    const basic = Buffer.from(`anyone:${token}`).toString('base64');
    expect((await get(`${url}/metrics`, { authorization: `Basic ${basic}` })).status).toBe(200);
    expect(daemon.output).not.toContain(token);
  });

  it('`health` asks /healthz with the token from the config, as a container health check does, and fails when nobody answers', async () => {
    const port = await freePort();
    const token = 'studio-token-health-42';
    const { sandbox, daemon, workspace } = await start({ http: { listen: `127.0.0.1:${port}`, token } });
    expect(await runCliAsync(workspace, ['health'])).toMatchObject({ status: 0, stdout: 'ok\n' });
    sandbox.faults.setUnauthorized(true);
    writeFileSync(join(workspace.inbox, 'mix.wav'), pcmWav(20_000));
    await daemon.waitForLog((r) => String(r.msg).includes('paused'));
    expect(await runCliAsync(workspace, ['health'])).toMatchObject({ status: 1, stdout: expect.stringMatching(/^paused: API key rejected/) });
    await daemon.stop('SIGTERM');
    expect(await runCliAsync(workspace, ['health'])).toMatchObject({ status: 1, stdout: expect.stringMatching(/^no answer from http:\/\/127\.0\.0\.1:\d+\/healthz: .*is the daemon running\?/) });
  });
});


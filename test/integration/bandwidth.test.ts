import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, editConfig, jobFor, runCli, runCliAsync, useDaemons, waitForState, waitUntil } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-bandwidth-');
const { startSandbox, startDaemon } = useDaemons();

/** A pause window over the whole week: in force whenever the test runs. */
const PAUSED_ALL_WEEK = { timezone: 'UTC', windows: [{ days: 'Mon-Sun', hours: '00:00-24:00', limit: 'pause' }] };

/** A pause window over today and tomorrow (UTC): in force now, with an end at least a day away. */
function pausedTodayAndTomorrow() {
  const names = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const today = new Date().getUTCDay();
  return { timezone: 'UTC', windows: [{ days: `${names[today]}-${names[(today + 1) % 7]}`, hours: '00:00-24:00', limit: 'pause' }] };
}

async function metricsOf(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('bandwidth limits', () => {
  it('parks an upload in flight when a pause window begins, without counting an attempt, and sends it as soon as a reload removes the window; status and /metrics say why', async () => {
    const sandbox = await startSandbox();
    const workspace = createWorkspace(tempDir(), sandbox, { uploads: { maxBytesPerSecond: '64 kB/s' }, http: { listen: '127.0.0.1:0' } });
    const daemon = startDaemon(workspace);
    const url = (await daemon.waitForLog((r) => typeof r.url === 'string')).url as string;
    expect(runCli(workspace, ['status']).stdout).toContain("Upload limit: 64 kB/s (base); masters' downloads: off");
    expect(await metricsOf(url)).toMatch(/^cryomix_watch_upload_limit_bytes_per_second\{reason="base"\} 64000$/m);
    expect(await (await fetch(`${url}/`)).text()).toContain('Upload limit: 64 kB/s (base)');

    // About 30 s at the cap: still uploading when the window begins. The window ends a day or more from now, and a reload
    // that removes it must not leave the upload waiting for that end.
    const mix = join(workspace.inbox, 'long bounce.wav');
    writeFileSync(mix, pcmWav(2_000_000));
    await waitUntil(async () => (await jobFor(workspace, mix))?.state === 'uploading' && ((await jobFor(workspace, mix))?.bytesSent ?? 0) > 0, 20_000, () => daemon.output.slice(-2000));
    editConfig(workspace, (config) => Object.assign(config.uploads as object, { schedule: pausedTodayAndTomorrow() }));
    daemon.signal('SIGHUP');
    const parked = await waitUntil(async () => {
      const row = await jobFor(workspace, mix);
      return row?.state === 'queued' && /^uploads are paused \(schedule: \w{3}-\w{3} 00:00-24:00\) until \d{4}-/.test(row.error ?? '') ? row : undefined;
    }, 20_000, () => daemon.output.slice(-2000));
    expect(parked.attempts).toBe(0);
    expect((await runCliAsync(workspace, ['status'])).stdout).toMatch(/Upload limit: paused \(schedule: \w{3}-\w{3} 00:00-24:00\), changes in \d+ h/);
    expect(await metricsOf(url)).toMatch(/^cryomix_watch_upload_limit_bytes_per_second\{reason="schedule: \w{3}-\w{3} 00:00-24:00"\} 0$/m);
    // Nothing starts while paused: a new file waits too, until someone sends it with --limit.
    const next = join(workspace.inbox, 'next.wav');
    writeFileSync(next, pcmWav(20_000));
    await waitForState(workspace, next, 'queued');
    expect((await runCliAsync(workspace, ['upload', next, '--limit', 'off'])).status).toBe(0);
    expect((await jobFor(workspace, mix))?.state).toBe('queued');

    editConfig(workspace, (config) => {
      const uploads = config.uploads as Record<string, unknown>;
      delete uploads.schedule;
      uploads.maxBytesPerSecond = 'off';
    });
    daemon.signal('SIGHUP');
    await daemon.waitForLog((r) => String(r.msg).includes('configuration reloaded') && JSON.stringify(r.changes).includes('schedule is now none'));
    expect(daemon.logs.filter((r) => String(r.msg).includes('configuration reloaded')).map((r) => r.changes)).toEqual([
      [expect.stringMatching(/^uploads\.schedule is now \w{3}-\w{3} 00:00-24:00 pause \(UTC\)$/)],
      ['uploads.maxBytesPerSecond is now off', 'uploads.schedule is now none'],
    ]);
    const done = await waitForState(workspace, mix, 'done', 20_000, () => daemon.output.slice(-2000));
    expect(done.attempts).toBe(1);
    await waitForState(workspace, next, 'done');
    expect(sandbox.objects()).toHaveLength(2);
    expect(await metricsOf(url)).toMatch(/^cryomix_watch_upload_limit_bytes_per_second\{reason="base"\} \+Inf$/m);
  });

  it('upload FILE refuses to send in a pause window, saying when it ends and how to send now; --limit sends it, and a bad --limit names the forms', async () => {
    const sandbox = await startSandbox();
    const workspace = createWorkspace(tempDir(), sandbox, { uploads: { schedule: PAUSED_ALL_WEEK } });
    const mix = join(workspace.inbox, 'now.wav');
    writeFileSync(mix, pcmWav(20_000));

    const refused = await runCliAsync(workspace, ['upload', mix]);
    expect(refused.status).toBe(1);
    expect(refused.stdout).toContain('now.wav: uploads are paused (schedule: Mon-Sun 00:00-24:00); a running daemon sends it then, or add --limit to send it now');

    const bad = await runCliAsync(workspace, ['upload', mix, '--limit', '4 Mb/s']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--limit "4 Mb\/s": .*Mbit\/s/);

    const sent = await runCliAsync(workspace, ['upload', mix, '--limit', '4 MB/s']);
    expect(sent.status).toBe(0);
    expect(sandbox.objects()).toHaveLength(1);
  });
});

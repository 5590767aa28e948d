import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, editConfig, jobFor, useDaemons, waitForState } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';

const tempDir = useTempDir('cryomix-reload-');
const { startSandbox, startDaemon } = useDaemons();


describe('SIGHUP reloads the configuration', () => {
  it('starts and stops watching folders, and keeps the running config when the new one is invalid', async () => {
    const sandbox = await startSandbox();
    const workspace = createWorkspace(tempDir(), sandbox);
    const second = join(workspace.dir, 'second inbox');
    mkdirSync(second);
    const daemon = startDaemon(workspace);
    await daemon.ready();

    editConfig(workspace, (config) => config.folders.push({ ...config.folders[0], path: second }));
    daemon.signal('SIGHUP');
    await daemon.waitForLog((r) => String(r.msg).includes(`started watching ${second}`));
    const added = join(second, 'new folder mix.wav');
    writeFileSync(added, pcmWav(20_000));
    await waitForState(workspace, added, 'done');

    editConfig(workspace, (config) => config.folders.shift());
    daemon.signal('SIGHUP');
    await daemon.waitForLog((r) => String(r.msg).includes(`stopped watching ${workspace.inbox}`));
    const ignored = join(workspace.inbox, 'no longer watched.wav');
    writeFileSync(ignored, pcmWav(20_000));

    const valid = readFileSync(workspace.configFile, 'utf8');
    writeFileSync(workspace.configFile, 'folders:\n  - path: ./x\n    settleSeconds: -1\n');
    daemon.signal('SIGHUP');
    const kept = await daemon.waitForLog((r) => String(r.msg).includes('keeping the running configuration'));
    expect(kept.msg).toContain('config: folders[0].settleSeconds: expected a number greater than 0, got -1');
    // Back to a valid file for this test's own `list` calls; the daemon is not told (no SIGHUP).
    writeFileSync(workspace.configFile, valid);
    const still = join(second, 'after a bad reload.wav');
    writeFileSync(still, pcmWav(21_000));
    await waitForState(workspace, still, 'done');
    expect(await jobFor(workspace, ignored)).toBeUndefined();
  });

  it('applies upload settings and the log level at once, and names each change that waits for a restart', async () => {
    const sandbox = await startSandbox();
    const workspace = createWorkspace(tempDir(), sandbox);
    const daemon = startDaemon(workspace);
    await daemon.ready();

    editConfig(workspace, (config) => {
      const uploads = config.uploads as Record<string, unknown>;
      Object.assign(uploads, { concurrency: 3, minBytes: 5000, shutdownGraceSeconds: 5 });
      config.log = { ...(config.log as object), level: 'info', summaryMinutes: 7 };
    });
    daemon.signal('SIGHUP');
    const warning = await daemon.waitForLog((r) => String(r.msg).includes('take effect at the next start'));
    expect(warning.changes).toEqual(['log.summaryMinutes']);
    const reloaded = await daemon.waitForLog((r) => String(r.msg).includes('configuration reloaded'));
    expect(reloaded.changes).toEqual(['uploads.concurrency is now 3', 'uploads.minBytes is now 5000', 'uploads.shutdownGraceSeconds is now 5', 'log.level is now info']);

    // 3,000 bytes: above the minimum the daemon started with (1,000), below the new one.
    const small = join(workspace.inbox, 'short sketch.wav');
    writeFileSync(small, pcmWav(3_000));
    expect((await waitForState(workspace, small, 'rejected')).error).toContain('the minimum is 5000 (uploads.minBytes)');
  });
});

import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, useWorkspace, waitForState } from '../helpers/daemon.js';

/**
 * inotify can stop telling the daemon about a folder without saying so. Each
 * of these left a finished file unseen until the next restart, before the
 * root's birth time was part of its identity and before inotify folders got
 * a slow rescan (found by a review that reproduced them against the daemon).
 */
const { sandbox, workspace, tempDir, startDaemon } = useWorkspace();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('events inotify never delivers', () => {
  it('a watched folder removed and made again is watched again, though ext4 gives it back the same inode number', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const first = join(workspace.inbox, 'first.wav');
    writeFileSync(first, pcmWav(30_000));
    await waitForState(workspace, first, 'done');

    rmSync(workspace.inbox, { recursive: true });
    mkdirSync(workspace.inbox);
    const late = join(workspace.inbox, 'late.wav');
    writeFileSync(late, pcmWav(31_000));
    await waitForState(workspace, late, 'done');
  });

  it('a file whose events were lost in a full inotify queue is found by the rescan', async () => {
    const patient = createWorkspace(tempDir(), sandbox, { folder: { rescanIntervalSeconds: 1 } });
    const daemon = startDaemon(patient);
    await daemon.ready();
    const junk = join(patient.inbox, 'junk');
    mkdirSync(junk);
    await sleep(500);
    // Stopped, the daemon reads no events while more than the kernel queues (fs.inotify.max_queued_events, 16384) arrive.
    process.kill(daemon.pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 20_000; i++) closeSync(openSync(join(junk, `take ${i}.tmp`), 'w'));
      writeFileSync(join(patient.inbox, 'late.wav'), pcmWav(30_000));
    } finally {
      process.kill(daemon.pid, 'SIGCONT');
    }
    await waitForState(patient, join(patient.inbox, 'late.wav'), 'done');
  });
});

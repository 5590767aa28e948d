import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, useWorkspace, waitForState, waitUntil } from '../helpers/daemon.js';
import { canMountTmpfs, useTmpfs } from '../chaos/mounts.js';

/**
 * inotify can stop telling the daemon about a folder without saying so. Each
 * of these left a finished file unseen until the next restart, before the
 * root's birth time was part of its identity and before inotify folders got
 * a slow rescan (found by a review that reproduced them against the daemon).
 */
const tmpfs = useTmpfs();
// After useTmpfs: the daemons are dead before a mount is taken away.
const { sandbox, workspace, tempDir, startDaemon } = useWorkspace();

/** How many events the kernel queues per inotify instance before it drops the rest. */
const QUEUED_EVENTS = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8'));
const OVERFLOW_SKIPPED = QUEUED_EVENTS > 100_000;
if (OVERFLOW_SKIPPED) console.log(`skipping the queue-overflow test: fs.inotify.max_queued_events is ${QUEUED_EVENTS}, too many files to create`);

/** The inotify watches a process holds, from /proc (one `inotify wd:` line each). */
function watchesOf(pid: number): number {
  let count = 0;
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      count += readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/^inotify wd:/gm)?.length ?? 0;
    } catch {
      // Closed since the listing.
    }
  }
  return count;
}

describe('events inotify never delivers', () => {
  it('a watched folder removed and made again is watched again, though ext4 gives it back the same inode number and the same birth time as ctime', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const first = join(workspace.inbox, 'first.wav');
    writeFileSync(first, pcmWav(30_000));
    await waitForState(workspace, first, 'done');

    const late = join(workspace.inbox, 'late.wav');
    const bytes = pcmWav(31_000);
    // Back to back, as from a script: the new root's first file often lands in the clock tick that made it,
    // leaving its birth time equal to its ctime, which then tells nothing.
    rmSync(workspace.inbox, { recursive: true });
    mkdirSync(workspace.inbox);
    writeFileSync(late, bytes);
    await waitForState(workspace, late, 'done');
  });

  it.skipIf(OVERFLOW_SKIPPED)('a file whose events were lost in a full inotify queue is found by the rescan', async () => {
    const patient = createWorkspace(tempDir(), sandbox, { folder: { rescanIntervalSeconds: 1 } });
    const daemon = startDaemon(patient);
    await daemon.ready();
    const junk = join(patient.inbox, 'junk');
    mkdirSync(junk);
    await waitUntil(() => watchesOf(daemon.pid) >= 2);
    // Stopped, the daemon reads no events while more than the kernel queues (fs.inotify.max_queued_events) arrive.
    process.kill(daemon.pid, 'SIGSTOP');
    try {
      for (let i = 0; i < QUEUED_EVENTS + 4_000; i++) closeSync(openSync(join(junk, `take ${i}.tmp`), 'w'));
      writeFileSync(join(patient.inbox, 'late.wav'), pcmWav(30_000));
    } finally {
      process.kill(daemon.pid, 'SIGCONT');
    }
    await waitForState(patient, join(patient.inbox, 'late.wav'), 'done');
  });

  it.skipIf(!canMountTmpfs)('a share mounted or unmounted below a watched folder is watched at once, not at the next rescan (skipped unless root can mount a tmpfs)', async () => {
    const daemon = startDaemon(workspace);
    await daemon.ready();
    const share = join(workspace.inbox, 'share');
    mkdirSync(share);
    await waitUntil(() => watchesOf(daemon.pid) >= 2);
    // The watch on share/ now watches the directory the mount covers: deaf to what is written on the mount.
    tmpfs.mount(share);
    const onTheMount = join(share, 'on the mount.wav');
    writeFileSync(onTheMount, pcmWav(30_000));
    await waitForState(workspace, onTheMount, 'done', undefined, () => daemon.output.slice(-2000));
    // Unmounted, the watch on the mount's root is gone with it: share/ is the covered directory again.
    await tmpfs.unmount(share);
    const underneath = join(share, 'underneath.wav');
    writeFileSync(underneath, pcmWav(31_000));
    await waitForState(workspace, underneath, 'done', undefined, () => daemon.output.slice(-2000));
  });
});

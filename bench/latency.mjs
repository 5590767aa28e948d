/*
 * 4. Detection latency: files dropped one at a time, spaced out; for each,
 * the time from its last write (the harness's clock when the write call
 * returned) to its upload starting, minus settleSeconds. "Upload starting"
 * is the daemon's queued → uploading transition (pino's `time`, same clock):
 * the claim, just before the signed-URL request and the PUT. The sandbox's
 * request log has no timestamps, so this is the closest observable point;
 * the URL request after it takes a few milliseconds on loopback.
 *
 * No baseline: the target is an absolute figure.
 */
import { randomFillSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { smallWav } from './lib/audio.mjs';
import { Daemon, Sandbox } from './lib/proc.mjs';
import { absolute, info } from './lib/report.mjs';
import { MiB, percentile, sleep } from './lib/util.mjs';
import { createWorkspace } from './lib/workspace.mjs';

export const title = 'detection latency';
const SETTLE_SECONDS = 1;

export async function run({ quick, work, log }) {
  const count = quick ? 20 : 50;
  const deadline = Date.now() + (quick ? 90_000 : 300_000);
  const sandbox = await Sandbox.start();
  const samples = [];
  try {
    const ws = createWorkspace(join(work, 'ws'), sandbox, { folder: { settleSeconds: SETTLE_SECONDS } });
    const daemon = Daemon.start(ws);
    try {
      await daemon.ready(60_000);
      const buffer = smallWav(MiB);
      for (let i = 0; i < count && Date.now() < deadline; i++) {
        randomFillSync(buffer, 44, 32);
        const path = join(ws.inbox, `drop-${String(i).padStart(3, '0')}.wav`);
        writeFileSync(path, buffer);
        const lastWrite = Date.now();
        await daemon.waitFor(() => daemon.files.get(path)?.done, 30_000, `${path} to be done`);
        const file = daemon.files.get(path);
        samples.push({
          toUploadingMs: file.uploading - lastWrite - SETTLE_SECONDS * 1000,
          toQueuedMs: file.queued - lastWrite - SETTLE_SECONDS * 1000,
          firstSeenMs: file.waiting - lastWrite,
        });
        // Spaced out, with jitter, so that timers do not beat in step with the drops.
        await sleep(200 + Math.random() * 300);
      }
    } finally {
      await daemon.stop();
    }
  } finally {
    await sandbox.stop();
  }
  if (samples.length === 0) throw new Error('no file measured');
  const up = samples.map((s) => s.toUploadingMs);
  const cut = samples.length < count ? `; cut at ${samples.length} of ${count} files by the time bound` : '';
  const details = { files: samples.length, settleSeconds: SETTLE_SECONDS, samples };
  return [
    absolute({ benchmark: title, figure: `p50 last write → upload start, minus settle (${samples.length} files)`, unit: 'ms', ours: percentile(up, 50), atMost: 300, note: `settleSeconds ${SETTLE_SECONDS}${cut}`, details }),
    absolute({ benchmark: title, figure: 'p95 last write → upload start, minus settle', unit: 'ms', ours: percentile(up, 95), atMost: 1000 }),
    info({
      benchmark: title,
      figure: 'p50 last write → first seen (waiting row)',
      unit: 'ms',
      ours: percentile(samples.map((s) => s.firstSeenMs), 50),
      note: `p50 last write → queued, minus settle: ${percentile(samples.map((s) => s.toQueuedMs), 50)} ms; max to upload start: ${Math.max(...up)} ms`,
    }),
  ];
}

import { describe, expect, it } from 'vitest';
import { summaryLine } from '../../src/daemon/heartbeat.js';

describe('summaryLine', () => {
  it('stays quiet when nothing moved', () => {
    const totals = { filesDone: 3, bytesUploaded: 9_000_000, failures: 0 };
    expect(summaryLine(totals, totals, 'watching 1 folder', 5)).toBeUndefined();
  });

  it('reports what happened in the window, and how things stand', () => {
    const line = summaryLine(
      { filesDone: 3, bytesUploaded: 9_000_000, failures: 0 },
      { filesDone: 15, bytesUploaded: 3_409_000_000, failures: 1 },
      'watching 2 folders, 2 uploading, 15 done today',
      5,
    );
    expect(line).toBe('last 5 min: 12 files done, 3.4 GB uploaded, 1 failed; now watching 2 folders, 2 uploading, 15 done today');
  });
});

import { describe, expect, it } from 'vitest';
import { renderStatusPage, type StatusPageData } from '../../src/ops/statusPage.js';
import type { JobView } from '../../src/report/jobView.js';
import { STATES, type State } from '../../src/store/states.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');

function file(overrides: Partial<JobView>): JobView {
  return {
    path: '/srv/exports/mix.wav',
    state: 'done',
    sessionId: 'b7a0c1e2-3d4f-4a5b-8c6d-7e8f9a0b1c2d',
    size: 40_000_000,
    sha256: null,
    attempts: 1,
    error: null,
    bytesSent: 0,
    nextAttemptAt: null,
    duplicateOf: null,
    masteringPercent: null,
    followUps: [],
    updatedAt: new Date(NOW - 60_000).toISOString(),
    host: null,
    ...overrides,
  };
}

function page(overrides: Partial<StatusPageData>): string {
  const counts = Object.fromEntries(STATES.map((state) => [state, 0])) as Record<State, number>;
  return renderStatusPage({ now: NOW, problems: [], folders: ['/srv/exports'], counts, files: [], ...overrides });
}

describe('the status page', () => {
  it('shows progress, the next retry and the reason a file stopped', () => {
    const html = page({
      files: [
        file({ path: '/srv/exports/a.wav', state: 'uploading', bytesSent: 10_000_000, host: 'studio-b' }),
        file({ path: '/srv/exports/b.wav', state: 'retrying', error: 'storage could not take the upload now (503)', nextAttemptAt: new Date(NOW + 30_000).toISOString() }),
        file({ path: '/srv/exports/c.wav', state: 'mastering', masteringPercent: 40 }),
        file({ path: '/srv/exports/d.wav', state: 'failed', error: 'the API refused: file too large' }),
        file({ path: '/srv/exports/e.wav', followUps: [{ kind: 'after-upload', error: 'move pending: ENOSPC: no space left on device', dueAt: new Date(NOW + 120_000).toISOString() }] }),
      ],
    });
    expect(html).toContain('<progress max="100" value="25">25%</progress>');
    expect(html).toMatch(/next try in \d+ s: storage could not take the upload now \(503\)/);
    expect(html).toContain('<progress max="100" value="40">');
    expect(html).toContain('the API refused: file too large');
    expect(html).toContain('move pending: ENOSPC: no space left on device, next try in 2 min');
    expect(html).toContain('Working: watching for new mixes.');
    // With a queue several machines share, which machine has the file.
    expect(html).toMatch(/a\.wav.*\n<div class="meta">[^<]* · on studio-b<\/div>/);
    expect(html.match(/ · on /g)).toHaveLength(1);
  });

  it('escapes everything that comes from disk or the API', () => {
    const html = page({
      problems: ['not watching /srv/<b>: missing'],
      folders: ['/srv/"x"'],
      files: [file({ path: '/srv/exports/<script>alert(1)<\\script>.wav', error: '<img src=x onerror=alert(1)>', state: 'failed' })],
    });
    expect(html).not.toMatch(/<script|<img|<b>/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;\\script&gt;.wav');
    expect(html).toContain('/srv/&quot;x&quot;');
  });

  it('says when nothing has been seen yet', () => {
    expect(page({})).toContain('No files seen yet');
  });
});

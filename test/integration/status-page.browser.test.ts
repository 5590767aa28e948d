import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { findChromium, launchChromium, measureWidth, PHONE, saveScreenshot, withPage, type Browser } from '../helpers/browser.js';
import { createWorkspace, jobFor, useDaemons, waitForState, waitUntil } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';

// Decided while the file is collected: finds Debian's chromium, installs it with apt when root, else skips and prints why.
const chromium = await findChromium();

const tempDir = useTempDir('cryomix-page-');

describe.skipIf('skip' in chromium)('the status page in a real browser (headless Chromium)', () => {
  let browser: Browser;
  const { startSandbox, startDaemon } = useDaemons();

  beforeAll(async () => {
    browser = await launchChromium(chromium);
  }, 90_000);
  afterAll(() => browser?.close());

  it('shows an upload moving and a finished file on a phone, and refreshes by itself', async () => {
    const sandbox = await startSandbox();
    // A long stall window: the stalled PUT stays `uploading` with its progress while the page is looked at.
    const workspace = createWorkspace(tempDir(), sandbox, { http: { listen: '127.0.0.1:0' }, uploads: { stallTimeoutSeconds: 30 } });
    const daemon = startDaemon(workspace);
    const url = (await daemon.waitForLog((r) => typeof r.url === 'string')).url as string;

    const finished = join(workspace.inbox, 'Verse 1 (final mix).wav');
    writeFileSync(finished, pcmWav(40_000));
    await waitForState(workspace, finished, 'done');
    sandbox.faults.add({ target: 'put', kind: 'stall', afterBytes: 100_000 });
    const moving = join(workspace.inbox, 'Chorus – alt take.wav');
    writeFileSync(moving, pcmWav(100_000));
    await waitUntil(async () => ((await jobFor(workspace, moving))?.bytesSent ?? 0) > 0);

    await withPage(browser, { url: `${url}/`, viewport: PHONE, isMobile: true }, async (page) => {
      const text = await page.innerText('body');
      expect(text).toContain('Verse 1 (final mix).wav');
      expect(text).toContain('Chorus – alt take.wav');
      expect(text).toMatch(/\d+% sent/);
      expect(await page.locator('progress').count()).toBe(1);
      expect(text).toContain('Working: watching for new mixes.');
      const { scrollWidth, innerWidth } = await measureWidth(page);
      expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
      await saveScreenshot(page, 'status-page-phone', { fullPage: true });

      // No navigation from here: the page's own refresh must bring the new file.
      const later = join(workspace.inbox, 'Bridge.wav');
      writeFileSync(later, pcmWav(30_000));
      await page.getByText('Bridge.wav').waitFor({ timeout: 20_000 });
    });
    expect(readFileSync(join(process.cwd(), 'test-artifacts', 'status-page-phone.png')).subarray(1, 4).toString()).toBe('PNG');
  });
});

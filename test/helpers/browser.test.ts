import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, launchChromium, measureWidth, PHONE, saveScreenshot, withPage, type Browser } from './browser.js';

// skipIf is decided while the file is collected, so find (or apt-install) Chromium
// with top-level await, before describe(). No vitest timeout applies here; the
// helper bounds itself (CHROMIUM_INSTALL_TIMEOUT_MS, 8 min). When it returns
// { skip }, it has already printed the reason with console.warn.
const chromium = await findChromium();

const PAGES: Record<string, (served: number) => string> = {
  '/': () => page('Hello', '<h1 id="title">Hello from cryomix</h1>'),
  // Reloads itself every second; the server counts the requests.
  '/refresh': (served) => page('Refresh', `<p id="served">${served}</p>`, '<meta http-equiv="refresh" content="1">'),
  '/phone': () =>
    page(
      'Phone',
      '<main style="padding:16px"><h1>Uploads</h1><p>mix-final.wav — mastered</p>' +
        '<img alt="" style="max-width:100%;width:800px;height:40px;background:#36c"></main>',
    ),
  // A control for the overflow check: a fixed 600 px box overflows a 390 px screen.
  '/wide': () => page('Wide', '<div style="width:600px;height:40px;background:#c33"></div>'),
};

function page(title: string, body: string, head = ''): string {
  return `<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">${head}<title>${title}</title>
<style>body{margin:0;font-family:sans-serif}</style></head><body>${body}</body></html>`;
}

describe.skipIf('skip' in chromium)('browser helper (real headless Chromium)', () => {
  const requests = new Map<string, number>();
  let server: Server;
  let base: string;
  let browser: Browser;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const served = (requests.get(path) ?? 0) + 1;
      requests.set(path, served);
      const render = PAGES[path];
      res.writeHead(render ? 200 : 404, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(render ? render(served) : 'not found');
    });
    // Loopback only.
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const started = Date.now();
    browser = await launchChromium(chromium);
    console.warn(`[chromium] ${browser.version()} launched in ${Date.now() - started} ms`);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('opens a page and reads an element', async () => {
    const text = await withPage(browser, { url: `${base}/` }, (p) => p.locator('#title').textContent());
    expect(text).toBe('Hello from cryomix');
  });

  it('follows <meta http-equiv="refresh"> (the server sees the reloads)', async () => {
    await withPage(browser, { url: `${base}/refresh` }, async (p) => {
      await expect.poll(() => requests.get('/refresh') ?? 0, { timeout: 10_000, interval: 100 }).toBeGreaterThanOrEqual(3);
      // And the page on screen is the reloaded one.
      await expect.poll(async () => Number(await p.locator('#served').textContent()), { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    });
  });

  it('fits a 390x844 phone without horizontal overflow, and a wide page does not', async () => {
    await withPage(browser, { url: `${base}/phone`, viewport: PHONE, isMobile: true }, async (p) => {
      const { innerWidth, scrollWidth } = await measureWidth(p);
      expect(innerWidth).toBe(390);
      expect(scrollWidth).toBeLessThanOrEqual(390);

      const shot = await saveScreenshot(p, 'browser-helper-phone');
      expect(shot).toMatch(/test-artifacts[/\\]browser-helper-phone\.png$/);
      const png = await readFile(shot);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    });
    await withPage(browser, { url: `${base}/wide`, viewport: PHONE, isMobile: true }, async (p) => {
      expect((await measureWidth(p)).scrollWidth).toBeGreaterThan(390);
    });
  });
});

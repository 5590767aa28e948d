/**
 * A real headless Chromium for tests that must look at a web page.
 *
 * Engineering standard: "Chromium is installable with apt for tests that need
 * it; a test that needs one must install or skip it explicitly and say so."
 * So `findChromium()` either finds a Chromium, installs Debian's `chromium`
 * package with apt (root only, bounded in time), or returns `{ skip }` and
 * prints why. Playwright's own browser download is never used (no internet
 * but the package registries); playwright-core drives the system binary.
 *
 * Usage (vitest's skipIf is decided at collection time, hence top-level await):
 *
 *   const chromium = await findChromium();   // may install: bounded by CHROMIUM_INSTALL_TIMEOUT_MS
 *   describe.skipIf('skip' in chromium)('my page', () => {
 *     let browser: Browser;
 *     beforeAll(async () => { browser = await launchChromium(chromium); });
 *     afterAll(() => browser?.close());
 *     it('fits a phone', () =>
 *       withPage(browser, { url, viewport: PHONE }, async (page) => { ... }));
 *   });
 */
import { spawn } from 'node:child_process';
import { constants, existsSync, readdirSync } from 'node:fs';
import { access, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium as playwrightChromium, type Browser, type LaunchOptions, type Page } from 'playwright-core';

export type { Browser, Page } from 'playwright-core';

export type ChromiumLookup = { executablePath: string } | { skip: string };

/** Upper bound for `apt-get update` + `apt-get install` together. */
export const CHROMIUM_INSTALL_TIMEOUT_MS = 8 * 60_000;

/** An iPhone 12–15-sized viewport, in CSS pixels. */
export const PHONE = { width: 390, height: 844 } as const;

/** Repo root, where `test-artifacts/` lives (git-ignored). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts');

const LOCK_FILE = join(tmpdir(), 'cryomix-chromium-install.lock');
/** A failed install is remembered this long, so parallel test files don't each retry a slow failure. */
const FAILURE_FILE = join(tmpdir(), 'cryomix-chromium-install.failed.json');
const FAILURE_MEMORY_MS = 10 * 60_000;

const log = (message: string): void => {
  process.stderr.write(`[chromium] ${message}\n`);
};

let cached: Promise<ChromiumLookup> | undefined;

/**
 * Finds a Chromium (`$CHROMIUM_PATH`, `/usr/bin/chromium`, `chromium`/`chromium-browser`
 * on PATH), installing it with apt when absent and allowed (root, apt-get present,
 * `CRYOMIX_NO_APT` unset). Otherwise `{ skip: reason }`, reason printed with console.warn.
 * Cached per process; concurrent callers share one attempt, and a lock file in
 * os.tmpdir() makes parallel vitest workers share one apt run.
 */
export function findChromium(): Promise<ChromiumLookup> {
  cached ??= lookup().then((result) => {
    if ('skip' in result) console.warn(`[chromium] skipping browser tests: ${result.skip}`);
    return result;
  });
  return cached;
}

async function lookup(): Promise<ChromiumLookup> {
  const override = process.env.CHROMIUM_PATH;
  if (override) {
    if (await isExecutable(override)) return { executablePath: override };
    return { skip: `CHROMIUM_PATH=${override} is not an executable file` };
  }
  const found = await locate();
  // dpkg unpacks /usr/bin/chromium well before an install (its libraries) is
  // finished: while one of our installs holds the lock, the binary proves nothing.
  if (found && !existsSync(LOCK_FILE)) return { executablePath: found };

  if (!found) {
    if (process.env.CRYOMIX_NO_APT) return { skip: 'Chromium is not installed and CRYOMIX_NO_APT is set, so not installing it' };
    if (process.getuid?.() !== 0) {
      return { skip: 'Chromium is not installed and we are not root; install it with `sudo apt-get install chromium` or set CHROMIUM_PATH' };
    }
    if (!(await which('apt-get'))) return { skip: 'Chromium is not installed and there is no apt-get to install it with; set CHROMIUM_PATH' };
  }
  return installUnderLock();
}

async function locate(): Promise<string | undefined> {
  if (await isExecutable('/usr/bin/chromium')) return '/usr/bin/chromium';
  return (await which('chromium')) ?? (await which('chromium-browser'));
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function which(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && (await isExecutable(join(dir, command)))) return join(dir, command);
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// One apt run across parallel workers

async function installUnderLock(): Promise<ChromiumLookup> {
  const giveUpAt = Date.now() + CHROMIUM_INSTALL_TIMEOUT_MS + 60_000;
  let announced = false;
  while (!(await tryLock())) {
    // Someone else is installing: wait for them to finish (not for the binary to appear).
    if (!announced) {
      log(`another process is installing Chromium (lock ${LOCK_FILE}); waiting`);
      announced = true;
    }
    if (Date.now() > giveUpAt) return { skip: `gave up waiting for another process's Chromium install (lock ${LOCK_FILE})` };
    await sleep(500);
  }
  try {
    // The previous lock holder may have just installed it, or just failed to.
    const found = await locate();
    if (found) return { executablePath: found };
    const recent = await recentFailure();
    if (recent) return { skip: recent };
    const aptGet = await which('apt-get');
    if (!aptGet) return { skip: 'Chromium is not installed and there is no apt-get to install it with; set CHROMIUM_PATH' };
    const result = await aptInstall(aptGet);
    if ('skip' in result) await writeFile(FAILURE_FILE, JSON.stringify({ at: Date.now(), reason: result.skip })).catch(() => {});
    else await rm(FAILURE_FILE, { force: true });
    return result;
  } finally {
    await rm(LOCK_FILE, { force: true });
  }
}

async function tryLock(): Promise<boolean> {
  try {
    const handle = await open(LOCK_FILE, 'wx');
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  // Held: break it only if its owner is gone (or it is older than any install can be).
  try {
    const pid = Number((await readFile(LOCK_FILE, 'utf8')).trim());
    const age = Date.now() - (await stat(LOCK_FILE)).mtimeMs;
    if (!pidAlive(pid) || age > CHROMIUM_INSTALL_TIMEOUT_MS + 120_000) {
      log(`removing stale lock ${LOCK_FILE} (pid ${pid})`);
      await rm(LOCK_FILE, { force: true });
    }
  } catch {
    // Vanished or half-written between our calls: just retry.
  }
  return false;
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function recentFailure(): Promise<string | undefined> {
  try {
    const { at, reason } = JSON.parse(await readFile(FAILURE_FILE, 'utf8')) as { at: number; reason: string };
    const ago = Date.now() - at;
    if (ago >= 0 && ago < FAILURE_MEMORY_MS) {
      return `an apt install of Chromium failed ${Math.round(ago / 1000)} s ago (delete ${FAILURE_FILE} to retry now): ${reason}`;
    }
  } catch {
    // None, or unreadable: no memory of a failure.
  }
  return undefined;
}

async function aptInstall(aptGet: string): Promise<ChromiumLookup> {
  const started = Date.now();
  const deadline = started + CHROMIUM_INSTALL_TIMEOUT_MS;
  const install = ['install', '-y', '--no-install-recommends', 'chromium'];
  const update = ['update'];

  // Without package lists the install cannot even find the package.
  if (!hasPackageLists()) {
    const updated = await runApt(aptGet, update, deadline);
    if (!updated.ok) return { skip: `apt-get update failed (${updated.why}):\n${updated.tail}` };
  }
  let result = await runApt(aptGet, install, deadline);
  if (!result.ok && !result.timedOut) {
    // Stale or missing lists ("Unable to locate package", 404s): refresh once and retry.
    log('install failed; running apt-get update and retrying');
    const updated = await runApt(aptGet, update, deadline);
    if (!updated.ok) {
      return { skip: `apt-get install chromium failed (${result.why}), and so did apt-get update (${updated.why}):\n${updated.tail}` };
    }
    result = await runApt(aptGet, install, deadline);
  }
  if (!result.ok) {
    const hint = result.timedOut ? " (dpkg may need 'dpkg --configure -a')" : '';
    return { skip: `apt-get install chromium failed (${result.why})${hint}:\n${result.tail}` };
  }
  const found = await locate();
  if (!found) return { skip: 'apt-get install chromium succeeded but no chromium binary was found afterwards' };
  log(`installed ${found} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { executablePath: found };
}

function hasPackageLists(): boolean {
  try {
    return readdirSync('/var/lib/apt/lists').some((name) => name.includes('_Packages'));
  } catch {
    return false;
  }
}

interface AptResult {
  ok: boolean;
  timedOut: boolean;
  why: string;
  tail: string;
}

function runApt(aptGet: string, args: string[], deadline: number): Promise<AptResult> {
  // Wait for dpkg's lock (someone else's apt) rather than failing at once.
  const argv = ['-o', 'DPkg::Lock::Timeout=120', ...args];
  const budget = deadline - Date.now();
  if (budget <= 0) return Promise.resolve({ ok: false, timedOut: true, why: 'out of time', tail: '' });
  log(`running apt-get ${args.join(' ')} (can take a few minutes; limit ${Math.round(budget / 1000)} s)`);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(aptGet, argv, {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group, so a timeout stops dpkg and its helpers too (they hold our pipes open).
      detached: true,
    });
    const killGroup = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    const lines: string[] = [];
    let partial = '';
    const collect = (chunk: Buffer): void => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      if (lines.length > 200) lines.splice(0, lines.length - 200);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const tail = (): string => [...lines, partial].filter((l) => l.trim()).slice(-20).join('\n');

    let timedOut = false;
    const heartbeat = setInterval(() => {
      log(`apt-get ${args[0]} still running (${Math.round((Date.now() - started) / 1000)} s): ${lines.at(-1)?.slice(0, 120) ?? ''}`);
    }, 30_000);
    const timer = setTimeout(() => {
      timedOut = true;
      log(`apt-get ${args[0]} exceeded its time limit; stopping it`);
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), 10_000).unref();
    }, budget);
    const finish = (result: AptResult): void => {
      clearInterval(heartbeat);
      clearTimeout(timer);
      log(`apt-get ${args[0]} ${result.ok ? 'done' : 'failed'} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      resolve(result);
    };
    child.on('error', (error) => finish({ ok: false, timedOut: false, why: error.message, tail: tail() }));
    child.on('close', (code, signal) => {
      if (timedOut) finish({ ok: false, timedOut: true, why: `timed out after ${Math.round(budget / 1000)} s`, tail: tail() });
      else if (code === 0) finish({ ok: true, timedOut: false, why: '', tail: tail() });
      else finish({ ok: false, timedOut: false, why: signal ? `killed by ${signal}` : `exit code ${code}`, tail: tail() });
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Driving it

/**
 * Launches headless Chromium. `--no-sandbox` because tests run as root (Chromium
 * refuses its sandbox as root). Close it in afterAll; a launch takes about a second,
 * so share one browser per file and make a fresh page (context) per test.
 */
export async function launchChromium(chromium: ChromiumLookup, options: LaunchOptions = {}): Promise<Browser> {
  if ('skip' in chromium) throw new Error(`Chromium is unavailable: ${chromium.skip}`);
  return playwrightChromium.launch({
    headless: true,
    timeout: 60_000,
    ...options,
    executablePath: chromium.executablePath,
    args: ['--no-sandbox', '--disable-dev-shm-usage', ...(options.args ?? [])],
  });
}

export interface PageOptions {
  /** Opened (waiting for `load`) before `fn` runs. */
  url?: string;
  /** CSS pixels; default playwright's 1280x720. */
  viewport?: { width: number; height: number };
  /** Emulate a touch phone (meta viewport honoured, touch events). */
  isMobile?: boolean;
  deviceScaleFactor?: number;
}

/** Runs `fn` with a page in a fresh browser context, closed afterwards whatever happens. */
export async function withPage<T>(browser: Browser, options: PageOptions, fn: (page: Page) => Promise<T>): Promise<T> {
  const context = await browser.newContext({
    ...(options.viewport ? { viewport: options.viewport } : {}),
    ...(options.isMobile !== undefined ? { isMobile: options.isMobile, hasTouch: options.isMobile } : {}),
    ...(options.deviceScaleFactor !== undefined ? { deviceScaleFactor: options.deviceScaleFactor } : {}),
  });
  try {
    const page = await context.newPage();
    if (options.url) await page.goto(options.url);
    return await fn(page);
  } finally {
    await context.close();
  }
}

/** One-shot: launch, run `fn` with a page, close everything. */
export async function withBrowser<T>(
  chromium: ChromiumLookup,
  options: PageOptions,
  fn: (page: Page) => Promise<T>,
): Promise<T> {
  const browser = await launchChromium(chromium);
  try {
    return await withPage(browser, options, fn);
  } finally {
    await browser.close();
  }
}

/**
 * The layout viewport's width and the document's scroll width, in CSS pixels:
 * `scrollWidth > innerWidth` means the page scrolls sideways. (Evaluated from a
 * string because the test tsconfig has no DOM lib.)
 */
export async function measureWidth(page: Page): Promise<{ innerWidth: number; scrollWidth: number }> {
  return (await page.evaluate('({ innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth })')) as {
    innerWidth: number;
    scrollWidth: number;
  };
}

/** Writes `test-artifacts/<name>.png` under the repo root and returns its path. */
export async function saveScreenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<string> {
  const safe = name.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '');
  if (!safe) throw new Error(`unusable screenshot name: ${JSON.stringify(name)}`);
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${safe}.png`);
  await page.screenshot({ path, fullPage: options.fullPage ?? false });
  return path;
}

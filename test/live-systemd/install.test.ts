import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pcmWav } from '../helpers/audio.js';
import { packAndInstall } from '../helpers/npmPackage.js';
import { Container, ContainerUnavailable, type Run } from './container.js';

/**
 * README "Install as a service", run as written on Debian 12 booted with
 * systemd as PID 1, then the service checked the way its users rely on it.
 * The tests run in order and build on each other: one container, one
 * install, from install to purge. A sandbox unit inside the container plays
 * the Cryo-mix API and storage. `npm run test:systemd`.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const CHECKOUT = '/root/cryomix-watch';
/** Where the package installed on this machine with npm install -g (README, "Or without a checkout") is seen inside. */
const PACKAGE = '/opt/cryomix-watch-package';
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
let packageWork: string | undefined;
const SANDBOX_PORT = 8080;
const CONFIG = `# What a studio sets with sudoedit: the sandbox unit as the API, one share, its uploads moved aside.
api:
  baseUrl: http://127.0.0.1:${SANDBOX_PORT}
  uploadOrigins: [http://127.0.0.1:${SANDBOX_PORT}/storage/]
folders:
  - path: /srv/exports
    settleSeconds: 1
    afterUpload: move
    moveTo: /srv/exports/uploaded
http: { listen: 127.0.0.1:9464 }
`;

let container: Container | undefined;
let unavailable: string | undefined;

/** The container, or the test is skipped saying why (under CI=true, beforeAll has failed instead). */
function box(skip: (note: string) => void): Container {
  if (!container) skip(unavailable ?? 'the container did not boot');
  return container!;
}

const lastLines = (text: string, count = 15) => text.trim().split('\n').slice(-count).join('\n');
const described = (command: string, result: Run) => `${command} exited ${result.status}:\n${lastLines(result.stdout)}\n${lastLines(result.stderr)}`;

/** Runs `script` and expects exit 0, showing its output when not. */
function ok(script: string, timeoutMs?: number): string {
  const result = container!.sh(script, timeoutMs === undefined ? {} : { timeoutMs });
  expect(result.status, described(script, result)).toBe(0);
  return result.stdout;
}

/** Runs `script` every half second until it exits 0; returns its output. */
async function until(script: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = container!.sh(script);
    if (result.status === 0) return result.stdout;
    if (Date.now() > deadline) throw new Error(`still failing after ${timeoutMs} ms: ${described(script, result)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** An HTTP GET from inside the container (node is there; curl is not): the status line, then the body. */
const get = (url: string) => `node -e 'fetch(process.argv[1]).then(async (r) => { console.log(r.status); console.log(await r.text()); process.exit(r.ok ? 0 : 1) }, (e) => { console.error(String(e)); process.exit(1) })' '${url}'`;
const healthy = get('http://127.0.0.1:9464/healthz');
const storedObjects = () => JSON.parse(ok(get(`http://127.0.0.1:${SANDBOX_PORT}/_sandbox/objects`)).split('\n').slice(1).join('\n')) as { sha256: string; objectName: string }[];
const show = (property: string) => ok(`systemctl show -p ${property} --value cryomix-watch`).trim();

describe('README "Install as a service", under a live systemd', () => {
  beforeAll(async () => {
    try {
      // Installed on this machine before the boot: the container has no network, and its binds are fixed at boot.
      packageWork = mkdtempSync(join(tmpdir(), 'cryomix-live-package-'));
      const { installed } = packAndInstall(packageWork);
      container = await Container.boot('cryomix-watch-test', { [CHECKOUT]: REPO, [PACKAGE]: installed });
    } catch (error) {
      if (!(error instanceof ContainerUnavailable) || process.env.CI === 'true') throw error;
      unavailable = `no live systemd here: ${error.message}`;
      console.log(`skipping the live systemd test: ${unavailable}`);
    }
  }, 900_000);

  afterEach(({ task }) => {
    if (task.result?.state !== 'fail' || !container) return;
    // What the service said, for a check that failed.
    console.log(`${task.name}: the service's state and journal\n${container.sh('systemctl status --no-pager cryomix-watch; journalctl -u cryomix-watch -o cat --no-pager | tail -n 40').stdout}`);
  });

  afterAll(async () => {
    await container?.stop();
    if (packageWork) rmSync(packageWork, { recursive: true, force: true });
  }, 120_000);

  it('systemd in the container is Debian 12\'s (the version the README names)', ({ skip }) => {
    expect(box(skip).sh('systemctl --version').stdout).toMatch(/^systemd 252 /);
  });

  it('installer exits 0 with --api-key-file', ({ skip }) => {
    box(skip);
    ok('umask 077 && echo sandbox-key > /root/api-key');
    const output = ok(`cd ${CHECKOUT} && sudo systemd/install.sh --api-key-file /root/api-key`);
    expect(output).toContain('systemd: cryomix-watch enabled (not started)');
    expect(ok('id cryomix-watch')).toMatch(/uid=\d+\(cryomix-watch\)/);
  });

  it('installer exits 0 again after the config is edited (folders, the share\'s group)', ({ skip }) => {
    box(skip);
    // The studio: an engineer in the studio group owns the share; a visitor is in neither group.
    ok('groupadd studio && useradd -m -G studio engineer && useradd -m visitor && install -d -o engineer -g studio -m 2775 /srv/exports');
    writeFileSync(container!.hostPath('/tmp/config.yaml'), CONFIG);
    // sudoedit keeps the file's owner and mode; so does writing into it.
    ok('cat /tmp/config.yaml > /etc/cryomix-watch/config.yaml');
    // README "NAS shares and groups": what `systemctl edit cryomix-watch` saves.
    ok("mkdir -p /etc/systemd/system/cryomix-watch.service.d && printf '[Service]\\nSupplementaryGroups=studio\\n' > /etc/systemd/system/cryomix-watch.service.d/override.conf");
    const output = ok(`cd ${CHECKOUT} && sudo systemd/install.sh`);
    expect(output).toContain('wrote /etc/systemd/system/cryomix-watch.service.d/10-folders.conf');
    expect(ok('cat /etc/systemd/system/cryomix-watch.service.d/10-folders.conf')).toContain('ReadWritePaths="/srv/exports"');
  });

  it('a sandbox unit plays the API and storage', async ({ skip }) => {
    box(skip);
    ok(`systemd-run --unit=cryomix-sandbox /usr/local/bin/cryomix-watch sandbox --port ${SANDBOX_PORT}`);
    await until(get(`http://127.0.0.1:${SANDBOX_PORT}/_sandbox/objects`));
  });

  it('"check as the service user" passes before the first start', ({ skip }) => {
    box(skip);
    const output = ok(
      'sudo systemd-run --pipe --wait --quiet -p User=cryomix-watch -p LoadCredential=cryomix-api-key:/etc/cryomix-watch/api-key -p SupplementaryGroups=studio /usr/local/bin/cryomix-watch check',
    );
    expect(output).toMatch(/PASS/);
    expect(output).not.toMatch(/FAIL/);
  });

  it('systemd-analyze verify is silent about the installed unit', ({ skip }) => {
    box(skip);
    const result = container!.sh('systemd-analyze verify /usr/local/lib/systemd/system/cryomix-watch.service');
    expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({ status: 0, output: '' });
  });

  it('systemd-analyze security rates the exposure 2.0 or better', ({ skip }) => {
    box(skip);
    const report = ok('systemd-analyze security --no-pager cryomix-watch.service');
    const level = Number(/Overall exposure level for cryomix-watch\.service: (\d+(?:\.\d+)?)/.exec(report)?.[1]);
    console.log(`systemd-analyze security cryomix-watch.service: overall exposure ${level}`);
    expect(level, lastLines(report)).toBeLessThanOrEqual(2.0);
  });

  it('systemctl start returns once the service is ready, with a Status: line', ({ skip }) => {
    box(skip);
    ok('sudo systemctl start cryomix-watch');
    // Type=notify: start returns only after READY=1, so it is running already, and says what it does.
    expect(show('ActiveState')).toBe('active');
    expect(show('StatusText')).not.toBe('');
    expect(ok('systemctl status --no-pager cryomix-watch')).toMatch(/^\s*Status: "/m);
  });

  it('/healthz answers 200', ({ skip }) => {
    box(skip);
    expect(ok(healthy).split('\n')[0]).toBe('200');
  });

  const mix = pcmWav(1_200_000);
  const mixSha256 = createHash('sha256').update(mix).digest('hex');

  it('a WAV dropped into the folder is stored byte-exact', async ({ skip }) => {
    box(skip);
    writeFileSync(container!.hostPath('/tmp/Song.wav'), mix);
    ok('chmod 0644 /tmp/Song.wav && sudo -u engineer cp /tmp/Song.wav /srv/exports/Song.wav');
    await until(`${get(`http://127.0.0.1:${SANDBOX_PORT}/_sandbox/objects`)} | grep -q ${mixSha256}`);
    expect(storedObjects()).toEqual([expect.objectContaining({ objectName: 'Song.wav', sha256: mixSha256 })]);
  });

  it('the moved mix and its folder are readable by a user other than the service user', async ({ skip }) => {
    box(skip);
    await until('test -e /srv/exports/uploaded/Song.wav && ! test -e /srv/exports/Song.wav');
    expect(ok('sudo -u visitor sha256sum /srv/exports/uploaded/Song.wav').split(' ')[0]).toBe(mixSha256);
    expect(ok('stat -c "%a %G" /srv/exports/uploaded').trim()).toBe('2775 studio');
  });

  it('reload applies an added folder', async ({ skip }) => {
    box(skip);
    ok(`mkdir -p /srv/more && printf '  - path: /srv/more\\n' > /tmp/more.yaml && sed -i '/^http:/e cat /tmp/more.yaml' /etc/cryomix-watch/config.yaml`);
    ok('sudo systemctl reload cryomix-watch');
    await until("journalctl _SYSTEMD_UNIT=cryomix-watch.service -o cat --no-pager | grep -q 'started watching /srv/more'");
  });

  it('a restart uploads nothing again', async ({ skip }) => {
    box(skip);
    ok('sudo systemctl restart cryomix-watch');
    await until(healthy);
    // The startup scan is over once it is ready; give a wrong re-upload time to show.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(storedObjects()).toHaveLength(1);
  });

  it('SIGKILL: systemd restarts it, healthy', async ({ skip }) => {
    box(skip);
    const restarts = Number(show('NRestarts'));
    ok('systemctl kill --signal=SIGKILL cryomix-watch');
    await until(`test "$(systemctl show -p NRestarts --value cryomix-watch)" -gt ${restarts} && systemctl is-active --quiet cryomix-watch`);
    await until(healthy);
  });

  it('SIGSTOP: the watchdog restarts it (WatchdogSec= shortened to 10 s for the test)', async ({ skip }) => {
    box(skip);
    ok("printf '[Service]\\nWatchdogSec=10s\\n' > /etc/systemd/system/cryomix-watch.service.d/99-test-watchdog.conf && systemctl daemon-reload && systemctl restart cryomix-watch");
    const restarts = Number(show('NRestarts'));
    ok('systemctl kill --signal=SIGSTOP cryomix-watch');
    await until(`test "$(systemctl show -p NRestarts --value cryomix-watch)" -gt ${restarts} && systemctl is-active --quiet cryomix-watch`, 90_000);
    await until(healthy);
    ok('rm /etc/systemd/system/cryomix-watch.service.d/99-test-watchdog.conf && systemctl daemon-reload');
  });

  it('the journal holds only JSON lines from the service', ({ skip }) => {
    box(skip);
    const lines = ok('journalctl _SYSTEMD_UNIT=cryomix-watch.service -o cat --no-pager').split('\n').filter((line) => line.trim() !== '');
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.filter((line) => !isJson(line))).toEqual([]);
  });

  it('--uninstall keeps config, key and history; --uninstall --purge removes them', ({ skip }) => {
    box(skip);
    ok(`cd ${CHECKOUT} && sudo systemd/install.sh --uninstall`);
    expect(container!.sh('systemctl cat cryomix-watch').status).not.toBe(0);
    ok('test ! -e /usr/local/lib/cryomix-watch && test ! -e /usr/local/bin/cryomix-watch');
    ok('test -s /etc/cryomix-watch/config.yaml && test -s /etc/cryomix-watch/api-key && test -s /var/lib/cryomix-watch/state.db');
    ok(`cd ${CHECKOUT} && sudo systemd/install.sh --uninstall --purge`);
    ok('test ! -e /etc/cryomix-watch && test ! -e /var/lib/cryomix-watch');
  });

  it('DESTDIR=… --prefix /usr stages everything and touches nothing on the system', ({ skip }) => {
    box(skip);
    ok('touch /root/before-staging && sleep 1.1');
    ok(`cd ${CHECKOUT} && DESTDIR=/tmp/pkg systemd/install.sh --prefix /usr`);
    for (const staged of ['usr/lib/cryomix-watch/dist/cli/bin.cjs', 'usr/bin/cryomix-watch', 'usr/lib/systemd/system/cryomix-watch.service', 'usr/lib/sysusers.d/cryomix-watch.conf', 'etc/cryomix-watch/config.yaml']) {
      ok(`test -e /tmp/pkg/${staged}`);
    }
    // Everything on the root file system changed since, but what the system itself keeps changing (logs, /tmp, /run).
    const touched = ok('find / -xdev \\( -path /tmp -o -path /proc -o -path /sys -o -path /run -o -path /dev -o -path /var/log -o -path /var/tmp \\) -prune -o -newer /root/before-staging -print');
    expect(touched.split('\n').filter((path) => path !== '')).toEqual([]);
  });

  it('from the npm package (npm install -g): its installer sets up a service that starts healthy, and removes it again', ({ skip }) => {
    box(skip);
    ok(`sudo ${PACKAGE}/systemd/install.sh --api-key-file /root/api-key`);
    ok('cat /tmp/config.yaml > /etc/cryomix-watch/config.yaml');
    ok(`sudo ${PACKAGE}/systemd/install.sh`);
    ok('sudo systemctl start cryomix-watch');
    expect(show('ActiveState')).toBe('active');
    expect(ok(healthy).split('\n')[0]).toBe('200');
    expect(ok('/usr/local/bin/cryomix-watch --version').trim()).toBe(VERSION);
    ok(`sudo ${PACKAGE}/systemd/install.sh --uninstall --purge`);
    ok('test ! -e /usr/local/lib/cryomix-watch && test ! -e /etc/cryomix-watch && test ! -e /var/lib/cryomix-watch');
  });
});

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

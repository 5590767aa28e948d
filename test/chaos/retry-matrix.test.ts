import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Fault, type Sandbox } from '../../src/sandbox/index.js';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, DaemonProcess, runCli, waitUntil, type LogRecord, type Workspace } from '../helpers/daemon.js';
import { makeTempDir, useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, readJobRows, report, secretLeaks, type Audit, type Expected, type JobRow } from './harness.js';

/*
 * Scenario 2, modelled on Google's storage retry conformance cases: one fresh
 * file per case, one fault, and the exact number of URL requests, PUTs and
 * attempts it may cost. Cases run one after another against one daemon,
 * because a fault is consumed by the next request to its target, whoever
 * sends it.
 */

const KiB = 1024;
/** The main workspace's policy (createWorkspace): retries from 0.2 s, capped at 1 s. */
const INITIAL_MS = 200;
const MAX_MS = 1000;
/** Log times are taken just after the row committed; allow for that. */
const SLACK_MS = 50;

/** The live row of `path` as the daemon committed it. */
function rowOf(workspace: Workspace, path: string): JobRow | undefined {
  return readJobRows(workspace).find((row) => row.path === path && row.current === 1);
}

function countsFor(sandbox: Sandbox, sessionId: string): { multiUpload: number; put: number } {
  const mine = sandbox.requests().filter((request) => request.sessionId === sessionId);
  return { multiUpload: mine.filter((r) => r.endpoint === 'multi-upload').length, put: mine.filter((r) => r.endpoint === 'put').length };
}

function transitions(daemon: DaemonProcess, path: string): (LogRecord & { from: string; to: string; time: number; nextAttemptAt?: string })[] {
  return daemon.logs.filter((r) => r.event === 'transition' && r.file === path) as never;
}

/** Delay the daemon chose for each `→ retrying`, from the transition log. */
function retryDelays(daemon: DaemonProcess, path: string): { attempts: number; delayMs: number }[] {
  return transitions(daemon, path)
    .filter((r) => r.to === 'retrying')
    .map((r) => ({ attempts: r.attempts as number, delayMs: Date.parse(r.nextAttemptAt!) - r.time }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Outcome {
  state: string;
  multiUpload: number;
  put: number;
  attempts: number;
}

interface CaseResult {
  name: string;
  expected: Outcome & { error?: string };
  actual: Outcome & { error?: string };
  notes: string[];
}

const results: CaseResult[] = [];
const transientFiles: Expected[] = [];
let transientAudit: Audit | undefined;
const outputs: string[] = [];

const passed = (result: CaseResult) =>
  result.notes.length === 0 &&
  result.actual.state === result.expected.state &&
  result.actual.multiUpload === result.expected.multiUpload &&
  result.actual.put === result.expected.put &&
  result.actual.attempts === result.expected.attempts &&
  (result.expected.error === undefined || (result.actual.error ?? '').includes(result.expected.error));

let secretLeakCount = 0;
/** Tests that reached their last assertion, and whether the shared daemon stopped cleanly. */
let completed = 0;
const TESTS = 4;
let stoppedCleanly = false;

afterAll(() => {
  if (results.length === 0) return;
  report({
    scenario: 'retry matrix',
    rounds: 1,
    files: results.length,
    lost: transientAudit?.lost ?? transientFiles.length,
    duplicated: transientAudit?.duplicated ?? 0,
    corrupted: transientAudit?.corrupted ?? 0,
    extra: { casesPassed: `${results.filter(passed).length}/${results.length}`, secretLeaks: secretLeakCount },
    checksPassed: completed === TESTS && stoppedCleanly && secretLeakCount === 0 && results.every(passed),
  });
});

describe('chaos 2: retry matrix', () => {
  let sandbox: Sandbox;
  let workspace: Workspace;
  let daemon: DaemonProcess;
  let cleanup: () => Promise<void>;
  let serial = 0;

  beforeAll(async () => {
    const dir = await makeTempDir('cryomix-chaos-retry-');
    cleanup = dir.cleanup;
    sandbox = await startSandbox({ apiKey: CANARY_KEY });
    workspace = createWorkspace(dir.dir, sandbox, { apiKey: CANARY_KEY });
    daemon = new DaemonProcess(workspace);
    await daemon.ready();
  });

  afterAll(async () => {
    const stopped = await daemon?.stop('SIGTERM');
    if (daemon) outputs.push(daemon.output);
    const leaks = workspace ? secretLeaks(outputs, workspace) : [];
    secretLeakCount += leaks.length;
    await sandbox?.close();
    await cleanup?.();
    stoppedCleanly = stopped?.code === 0 && stopped.signal === null;
    expect(stopped).toEqual({ code: 0, signal: null });
    expect(leaks).toEqual([]);
  });

  /** Writes a fresh file after arming the faults, and waits for the row to stop moving. */
  async function runCase(name: string, faults: Fault[], size: number, final: string[] = ['done', 'failed']): Promise<{ path: string; row: JobRow; bytes: Buffer }> {
    sandbox.faults.clear();
    for (const fault of faults) sandbox.faults.add(fault);
    const path = join(workspace.inbox, `case ${String(++serial).padStart(2, '0')} ${name.replace(/[^\w]+/g, '-')}.wav`);
    const bytes = pcmWav(size);
    writeFileSync(path, bytes);
    const row = await waitUntil(
      () => {
        const current = rowOf(workspace, path);
        return current && final.includes(current.state) ? current : undefined;
      },
      20_000,
      () => `${name}: ${JSON.stringify(rowOf(workspace, path))}`,
    ).catch(() => rowOf(workspace, path) ?? ({ path, session_id: '', state: 'never seen', attempts: 0, error: null } as unknown as JobRow));
    return { path, row, bytes };
  }

  function record(name: string, expected: CaseResult['expected'], row: JobRow, notes: string[] = []): CaseResult {
    const counts = row.session_id ? countsFor(sandbox, row.session_id) : { multiUpload: 0, put: 0 };
    const result: CaseResult = {
      name,
      expected,
      actual: { state: row.state, ...counts, attempts: row.attempts, ...(expected.error === undefined ? {} : { error: row.error ?? '' }) },
      notes,
    };
    results.push(result);
    return result;
  }

  /** The table of outcomes, so one failure shows every case rather than stopping at the first. */
  function expectAll(cases: CaseResult[]): void {
    const view = (r: CaseResult, which: 'expected' | 'actual') => ({
      name: r.name,
      ...r[which],
      error: which === 'actual' && r.expected.error !== undefined && (r.actual.error ?? '').includes(r.expected.error) ? r.expected.error : r[which].error,
      notes: which === 'actual' ? r.notes : [],
    });
    expect(cases.map((r) => view(r, 'actual'))).toEqual(cases.map((r) => view(r, 'expected')));
  }

  it('retries every transient failure until the file is done, with exact attempt counts', async () => {
    const transient: { name: string; faults: Fault[]; size?: number; multiUpload: number; put: number }[] = [
      { name: 'PUT reset before the body', faults: [{ target: 'put', kind: 'reset', afterBytes: 0 }], multiUpload: 2, put: 2 },
      { name: 'PUT reset after 256 KiB', faults: [{ target: 'put', kind: 'reset', afterBytes: 256 * KiB }], size: 600 * KiB, multiUpload: 2, put: 2 },
      { name: 'PUT 408', faults: [{ target: 'put', kind: 'status', status: 408 }], multiUpload: 2, put: 2 },
      { name: 'PUT 429 with Retry-After', faults: [{ target: 'put', kind: 'status', status: 429, retryAfterSeconds: 2 }], multiUpload: 2, put: 2 },
      { name: 'PUT 429 without Retry-After', faults: [{ target: 'put', kind: 'status', status: 429 }], multiUpload: 2, put: 2 },
      ...[500, 502, 503, 504].map((status) => ({ name: `PUT ${status}`, faults: [{ target: 'put', kind: 'status', status } as Fault], multiUpload: 2, put: 2 })),
      // Small, so the whole body fits in the socket buffers and the watchdog's drain allowance stays under a second.
      { name: 'PUT stall', faults: [{ target: 'put', kind: 'stall', afterBytes: 8 * KiB }], size: 20 * KiB, multiUpload: 2, put: 2 },
      { name: 'multi-upload 503', faults: [{ target: 'multi-upload', kind: 'status', status: 503 }], multiUpload: 2, put: 1 },
    ];
    const cases: CaseResult[] = [];
    for (const spec of transient) {
      const { path, row, bytes } = await runCase(spec.name, spec.faults, spec.size ?? 40 * KiB);
      transientFiles.push({ path, sha256: sha256(bytes) });
      const notes: string[] = [];
      const delays = retryDelays(daemon, path);
      if (delays.length !== 1) notes.push(`expected one retrying transition, saw ${delays.length}`);
      const retryAfter = spec.faults[0]!.kind === 'status' ? spec.faults[0]!.retryAfterSeconds : undefined;
      for (const { delayMs } of delays) {
        // Retry-After wins, even above the cap; otherwise the first delay is at most the initial one.
        if (retryAfter !== undefined && delayMs < retryAfter * 1000 - SLACK_MS) notes.push(`Retry-After ${retryAfter} s not honoured: delay ${delayMs} ms`);
        if (retryAfter === undefined && (delayMs <= 0 || delayMs > INITIAL_MS + SLACK_MS)) notes.push(`first backoff ${delayMs} ms outside (0, ${INITIAL_MS}]`);
      }
      // The daemon must not move the row back to work before the time it committed.
      const log = transitions(daemon, path);
      const parked = log.find((r) => r.to === 'retrying');
      const resumed = log.find((r) => r.from === 'retrying' && r.to === 'queued');
      if (parked && resumed && resumed.time < Date.parse(parked.nextAttemptAt!)) {
        notes.push(`resumed at ${new Date(resumed.time).toISOString()}, before nextAttemptAt ${parked.nextAttemptAt}`);
      }
      cases.push(record(spec.name, { state: 'done', multiUpload: spec.multiUpload, put: spec.put, attempts: 2 }, row, notes));
    }

    // The row is final: nothing else may reach the API or storage for these files afterwards.
    await sleep(MAX_MS + 500);
    for (const result of cases) {
      const row = rowOf(workspace, transientFiles[cases.indexOf(result)]!.path)!;
      const later = countsFor(sandbox, row.session_id);
      if (later.multiUpload !== result.actual.multiUpload || later.put !== result.actual.put) result.notes.push(`requests went on after ${row.state}: ${JSON.stringify(later)}`);
    }
    transientAudit = audit(workspace, sandbox, transientFiles);
    expectAll(cases);
    expect(transientAudit).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, integrity: 'ok' });
    completed++;
  });

  it('does not retry blindly what cannot succeed: 400, 401, 403, 404', async () => {
    const cases: CaseResult[] = [];
    const tracked: { result: CaseResult; sessionId: string }[] = [];
    const permanent: { name: string; faults: Fault[]; multiUpload: number; put: number; error: string }[] = [
      { name: 'multi-upload 400', faults: [{ target: 'multi-upload', kind: 'status', status: 400 }], multiUpload: 1, put: 0, error: 'Bad Request (injected by the sandbox)' },
      // Both the PUT and the PUT with the one fresh URL are refused.
      { name: 'PUT 403', faults: [{ target: 'put', kind: 'status', status: 403, times: 2 }], multiUpload: 2, put: 2, error: 'Forbidden (injected by the sandbox)' },
      { name: 'PUT 404', faults: [{ target: 'put', kind: 'status', status: 404 }], multiUpload: 1, put: 1, error: 'Not Found (injected by the sandbox)' },
      { name: 'multi-upload 404', faults: [{ target: 'multi-upload', kind: 'status', status: 404 }], multiUpload: 1, put: 0, error: 'Not Found (injected by the sandbox)' },
    ];
    for (const spec of permanent) {
      const { row } = await runCase(spec.name, spec.faults, 40 * KiB);
      const result = record(spec.name, { state: 'failed', multiUpload: spec.multiUpload, put: spec.put, attempts: 1, error: spec.error }, row);
      if (transitions(daemon, row.path).some((r) => r.to === 'retrying')) result.notes.push('went through retrying');
      cases.push(result);
      tracked.push({ result, sessionId: row.session_id });
    }

    // 401: every API call would fail the same way, so uploads pause; only the key probe (GET /api/percentage) goes on.
    sandbox.faults.clear();
    sandbox.faults.setUnauthorized(true);
    const path = join(workspace.inbox, `case ${String(++serial).padStart(2, '0')} 401.wav`);
    writeFileSync(path, pcmWav(40 * KiB));
    const notes: string[] = [];
    const requeued = await daemon.waitForLog((r) => r.event === 'transition' && r.file === path && r.from === 'uploading' && r.to === 'queued', 20_000).catch(() => undefined);
    if (!requeued) notes.push('never went back to queued after the 401');
    const pausedRow = rowOf(workspace, path);
    const sessionId = pausedRow?.session_id ?? '';
    const putsBefore = sandbox.requests().filter((r) => r.endpoint === 'put').length;
    const probesBefore = sandbox.requests().filter((r) => r.endpoint === 'percentage').length;
    await sleep(1500); // five recheck intervals (authRecheckSeconds 0.3)
    const during = countsFor(sandbox, sessionId);
    const probes = sandbox.requests().filter((r) => r.endpoint === 'percentage').length - probesBefore;
    const status = JSON.parse(runCli(workspace, ['status', '--json']).stdout) as { paused: unknown };
    if (rowOf(workspace, path)?.state !== 'queued') notes.push(`while paused the row is ${rowOf(workspace, path)?.state}, not queued`);
    if (!status.paused) notes.push('status --json does not show the pause');
    if (during.multiUpload !== 1 || during.put !== 0) notes.push(`while paused: ${JSON.stringify(during)}, expected 1 multi-upload and no PUT`);
    if (sandbox.requests().filter((r) => r.endpoint === 'put').length !== putsBefore) notes.push('a PUT went out while paused');
    if (probes < 2) notes.push(`the key was rechecked ${probes} times in 1.5 s (every 0.3 s expected)`);
    sandbox.faults.setUnauthorized(false);
    const row = await waitUntil(() => {
      const current = rowOf(workspace, path);
      return current?.state === 'done' ? current : undefined;
    }, 20_000).catch(() => rowOf(workspace, path) ?? ({ path, session_id: sessionId, state: 'never seen', attempts: 0, error: null } as unknown as JobRow));
    // The refused call is not counted as an attempt: the key, not the file, was at fault.
    const unauthorized = record('401 (pause, then key accepted)', { state: 'done', multiUpload: 2, put: 1, attempts: 1 }, row, notes);
    cases.push(unauthorized);

    // Failed is final: no request for those files may follow, however long we wait.
    await sleep(MAX_MS + 500);
    for (const { result, sessionId: id } of tracked) {
      const later = countsFor(sandbox, id);
      if (later.multiUpload !== result.actual.multiUpload || later.put !== result.actual.put) result.notes.push(`requests went on after failed: ${JSON.stringify(later)}`);
    }
    expectAll(cases);
    completed++;
  });

  it('caps the exponential backoff at maxDelaySeconds', async () => {
    // Four failures in a row: uncapped, the delays would be 0.2, 0.4, 0.8 and 1.6 s.
    const name = 'PUT 500 four times (cap)';
    const { path, row } = await runCase(name, [{ target: 'put', kind: 'status', status: 500, times: 4 }], 40 * KiB);
    const delays = retryDelays(daemon, path);
    const notes: string[] = [];
    if (delays.length !== 4) notes.push(`expected 4 retrying transitions, saw ${delays.length}`);
    for (const { attempts, delayMs } of delays) {
      const cap = Math.min(MAX_MS, INITIAL_MS * 2 ** (attempts - 1));
      if (delayMs <= 0 || delayMs > cap + SLACK_MS) notes.push(`after attempt ${attempts}: delay ${delayMs} ms, allowed (0, ${cap}]`);
    }
    console.log(`chaos retry: backoff delays ${JSON.stringify(delays)}`);
    expectAll([record(name, { state: 'done', multiUpload: 5, put: 5, attempts: 5 }, row, notes)]);
    completed++;
  });
});

describe('chaos 2: backoff survives a restart', () => {
  const tempDir = useTempDir('cryomix-chaos-retry-restart-');

  it('keeps each file retrying until its own jittered nextAttemptAt, across SIGTERM and restart', async () => {
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const daemons: DaemonProcess[] = [];
    // Counted as failed unless every assertion below passes.
    const outcome: CaseResult = {
      name: 'backoff persisted across restart',
      expected: { state: 'done', multiUpload: 2, put: 2, attempts: 2 },
      actual: { state: 'done', multiUpload: 2, put: 2, attempts: 2 },
      notes: ['did not complete'],
    };
    results.push(outcome);
    try {
      // Long delays, so a stop and a start fit before the retry falls due: equal jitter puts the first one in [2.5, 5] s.
      const workspace = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY, uploads: { retry: { initialDelaySeconds: 5, maxDelaySeconds: 5 } } });
      const first = new DaemonProcess(workspace);
      daemons.push(first);
      await first.ready();
      sandbox.faults.add({ target: 'put', kind: 'status', status: 503, times: 2 });
      const files = ['jitter a.wav', 'jitter b.wav'].map((name) => {
        const bytes = pcmWav(40 * KiB);
        const path = join(workspace.inbox, name);
        writeFileSync(path, bytes);
        return { path, sha256: sha256(bytes) };
      });
      const parked = await waitUntil(() => {
        const rows = files.map((file) => rowOf(workspace, file.path));
        return rows.every((row) => row?.state === 'retrying') ? (rows as JobRow[]) : undefined;
      }, 20_000);
      const delays = parked.map((row) => row.next_attempt_at! - row.updated_at);
      console.log(`chaos retry: jittered first delays ${delays.map((d) => Math.round(d)).join(' ms, ')} ms`);
      // Two files failing the same way at the same moment must not retry in lockstep; neither may exceed the cap.
      expect(parked[0]!.next_attempt_at).not.toBe(parked[1]!.next_attempt_at);
      expect(delays[0]).not.toBe(delays[1]);
      for (const delay of delays) {
        expect(delay).toBeGreaterThan(0);
        expect(delay).toBeLessThanOrEqual(5000);
      }

      expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      const afterStop = files.map((file) => rowOf(workspace, file.path)!);
      expect(afterStop.map((row) => [row.state, row.next_attempt_at, row.session_id])).toEqual(parked.map((row) => ['retrying', row.next_attempt_at, row.session_id]));
      const putsBeforeRestart = sandbox.requests().filter((r) => r.endpoint === 'put').length;

      // Watch storage from outside: a PUT stamped before nextAttemptAt certainly arrived before it.
      const stamps: number[] = [];
      const stamp = () => {
        const puts = sandbox.requests().filter((r) => r.endpoint === 'put').length;
        while (putsBeforeRestart + stamps.length < puts) stamps.push(Date.now());
      };
      const stamper = setInterval(stamp, 10);
      const second = new DaemonProcess(workspace);
      daemons.push(second);
      try {
        await second.ready();
        const readyAt = Date.now();
        const earliest = Math.min(...parked.map((row) => row.next_attempt_at!));
        if (readyAt >= earliest) console.log(`chaos retry: the restart was ready ${readyAt - earliest} ms after the first retry fell due; the early-PUT check is weak this run`);
        await waitUntil(() => files.every((file) => rowOf(workspace, file.path)?.state === 'done'), 20_000);
      } finally {
        clearInterval(stamper);
        stamp(); // a PUT that arrived since the last tick
      }

      for (const [index, file] of files.entries()) {
        const row = rowOf(workspace, file.path)!;
        expect(row).toMatchObject({ state: 'done', attempts: 2, session_id: parked[index]!.session_id });
        expect(countsFor(sandbox, row.session_id)).toEqual({ multiUpload: 2, put: 2 });
        // The restarted daemon's own account: it woke the row no earlier than the committed time.
        const resumed = transitions(second, file.path).find((r) => r.from === 'retrying' && r.to === 'queued');
        expect(resumed, `${file.path} never resumed in the restarted daemon`).toBeDefined();
        expect(resumed!.time).toBeGreaterThanOrEqual(Math.floor(parked[index]!.next_attempt_at!));
      }
      const earliestDue = Math.min(...parked.map((row) => row.next_attempt_at!));
      expect(stamps).toHaveLength(2);
      for (const stamp of stamps) expect(stamp).toBeGreaterThanOrEqual(Math.floor(earliestDue));

      expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      const result = audit(workspace, sandbox, files);
      expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
      const leaks = secretLeaks([first.output, second.output], workspace);
      secretLeakCount += leaks.length;
      expect(leaks).toEqual([]);
      outcome.notes = [];
      completed++;
    } finally {
      for (const daemon of daemons) await daemon.stop('SIGKILL');
      await sandbox.close();
    }
  });
});

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/report/jobView.js';
import type { ApiRequestRecord, Fault, Sandbox } from '../../src/sandbox/index.js';
import { pcmWav } from '../helpers/audio.js';
import { createWorkspace, listJobs, runCli, useDaemons, type LogRecord } from '../helpers/daemon.js';
import { useTempDir } from '../helpers/tempDir.js';
import { audit, CANARY_KEY, report, scaled, secretLeaks, type Expected } from './harness.js';
import { between, chaosSeed, seededRandom } from './random.js';

/**
 * Scenario 8: the API (or storage) answers with something the daemon must
 * not trust. Unsafe URLs and redirects end `failed` with a sentence naming
 * the problem and no connection anywhere; bodies that are not the documented
 * envelope are transient (src/cryomix/client.ts, #decode): `retrying`, then
 * `done` once the sandbox answers honestly again. A canary listener that no
 * config names counts every TCP connection it receives: it must see none.
 */

const tempDir = useTempDir('cryomix-chaos-hostile-');
const { startSandbox, startDaemon } = useDaemons();
let canary: Canary | undefined;

afterEach(async () => {
  await canary?.close();
});

const ROUNDS = scaled(1, 5);
const HUGE_BYTES = scaled(8, 64) * 1024 * 1024;
const FINAL_STATES = ['done', 'failed', 'rejected', 'removed'];

interface Canary {
  port: number;
  connections: number;
  requests: string[];
  close(): Promise<void>;
}

/** A listener on loopback that nothing is configured to reach; it answers 200 so a client that got there would think it succeeded. */
async function startCanary(): Promise<Canary> {
  const server: Server = createServer((req, res) => {
    state.requests.push(`${req.method ?? ''} ${(req.url ?? '').split('?')[0] ?? ''}`);
    req.resume();
    req.once('end', () => res.end());
  });
  const state: Canary = {
    port: 0,
    connections: 0,
    requests: [],
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('connection', () => {
    state.connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

/** What a V4 signed URL's query looks like, so the daemon's redaction is tested along the way. */
function signedQuery(): string {
  const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return new URLSearchParams({
    'X-Goog-Algorithm': 'GOOG4-HMAC-SHA256',
    'X-Goog-Credential': `sandbox/${date.slice(0, 8)}/auto/storage/goog4_request`,
    'X-Goog-Date': date,
    'X-Goog-Expires': '900',
    'X-Goog-SignedHeaders': 'content-type;host',
    'X-Goog-Signature': 'f00dfeed'.repeat(8),
  }).toString();
}

interface Hosts {
  /** e.g. 127.0.0.1:41234, the sandbox: api.baseUrl and, under /storage/, the only upload origin. */
  sandbox: string;
  /** 127.0.0.1:<port> of the canary. */
  canary: string;
}

interface Case {
  name: string;
  fault(hosts: Hosts, objectName: string): Fault;
  /** `failed`: refused for good, with `reason` in the row's error. `recovered`: retrying with `reason`, then done. */
  outcome: 'failed' | 'recovered';
  reason: RegExp;
  /** Storage PUTs the case must cause: only the redirect fault lets one reach storage. */
  puts: number;
}

const object = (name: string): string => `/storage/cryomix-sandbox/uploads/hostile/${encodeURIComponent(name)}?${signedQuery()}`;

const CASES: Case[] = [
  {
    name: 'signed URL on another host (the canary)',
    fault: (h, name) => ({ target: 'multi-upload', kind: 'signed-url', url: `http://${h.canary}${object(name)}` }),
    outcome: 'failed',
    reason: /is not under api\.uploadOrigins/,
    puts: 0,
  },
  {
    name: 'userinfo on the allowed origin',
    fault: (h, name) => ({ target: 'multi-upload', kind: 'signed-url', url: `http://user:pw@${h.sandbox}${object(name)}` }),
    outcome: 'failed',
    reason: /carries credentials/,
    puts: 0,
  },
  {
    name: 'allowed origin as userinfo, the canary as host',
    fault: (h, name) => ({ target: 'multi-upload', kind: 'signed-url', url: `http://${h.sandbox}@${h.canary}${object(name)}` }),
    outcome: 'failed',
    reason: /carries credentials/,
    puts: 0,
  },
  {
    name: 'plain http to storage.googleapis.com',
    fault: (_, name) => ({ target: 'multi-upload', kind: 'signed-url', url: `http://storage.googleapis.com${object(name)}` }),
    outcome: 'failed',
    reason: /is not https/,
    puts: 0,
  },
  {
    name: 'IPv4-mapped IPv6 spelling of the canary',
    fault: (h, name) => ({ target: 'multi-upload', kind: 'signed-url', url: `http://[::ffff:${h.canary.replace(':', ']:')}${object(name)}` }),
    outcome: 'failed',
    reason: /is not https|is not under api\.uploadOrigins/,
    puts: 0,
  },
  {
    name: 'host that merely starts with the allowed origin',
    fault: (h, name) => ({ target: 'multi-upload', kind: 'signed-url', url: `http://${h.sandbox}.evil.test${object(name)}` }),
    outcome: 'failed',
    reason: /not a URL/,
    puts: 0,
  },
  {
    name: 'name that starts with the allowed address (127.0.0.1.nip.io)',
    fault: (h, name) => ({ target: 'multi-upload', kind: 'signed-url', url: `http://127.0.0.1.nip.io:${h.canary.split(':')[1]}${object(name)}` }),
    outcome: 'failed',
    reason: /is not https/,
    puts: 0,
  },
  {
    name: 'https lookalike of storage.googleapis.com',
    fault: (_, name) => ({ target: 'multi-upload', kind: 'signed-url', url: `https://storage.googleapis.com.evil.test${object(name)}` }),
    outcome: 'failed',
    reason: /is not under api\.uploadOrigins/,
    puts: 0,
  },
  {
    name: 'path climbing out of the allowed prefix',
    fault: (h) => ({ target: 'multi-upload', kind: 'signed-url', url: `http://${h.sandbox}/storage/../_sandbox/faults?${signedQuery()}` }),
    outcome: 'failed',
    reason: /is not under api\.uploadOrigins/,
    puts: 0,
  },
  {
    name: 'API answers 307 to the canary',
    fault: (h) => ({ target: 'multi-upload', kind: 'redirect', location: `http://${h.canary}/api/signed-url/multi-upload` }),
    outcome: 'failed',
    reason: /redirect/,
    puts: 0,
  },
  {
    name: 'storage answers the PUT 307 to the canary',
    fault: (h, name) => ({ target: 'put', kind: 'redirect', location: `http://${h.canary}${object(name)}` }),
    outcome: 'failed',
    reason: /redirect/,
    puts: 1,
  },
  {
    name: 'upload_object_names names another file',
    fault: () => ({ target: 'multi-upload', kind: 'other-object' }),
    outcome: 'failed',
    reason: /another file/,
    puts: 0,
  },
  {
    name: 'malformed JSON',
    fault: () => ({ target: 'multi-upload', kind: 'malformed-json' }),
    outcome: 'recovered',
    reason: /malformed answer/,
    puts: 1,
  },
  {
    name: 'huge JSON',
    fault: () => ({ target: 'multi-upload', kind: 'huge-json', bytes: HUGE_BYTES }),
    outcome: 'recovered',
    reason: /malformed answer.*larger than/,
    puts: 1,
  },
  {
    name: 'envelope without data',
    fault: () => ({ target: 'multi-upload', kind: 'missing-field', field: 'data' }),
    outcome: 'recovered',
    reason: /"data" is missing/,
    puts: 1,
  },
  {
    name: 'data without upload_object_names',
    fault: () => ({ target: 'multi-upload', kind: 'missing-field', field: 'upload_object_names' }),
    outcome: 'recovered',
    reason: /"upload_object_names" is missing/,
    puts: 1,
  },
  {
    name: 'data without upload_folder_name',
    fault: () => ({ target: 'multi-upload', kind: 'missing-field', field: 'upload_folder_name' }),
    outcome: 'recovered',
    reason: /"upload_folder_name" is missing/,
    puts: 1,
  },
];

interface Outcome {
  name: string;
  path: string;
  transitions: LogRecord[];
  requests: ApiRequestRecord[];
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = between(random, 0, i);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('chaos 8: hostile API answers', () => {
  it(`refuses ${CASES.length} kinds of hostile answer without a connection outside uploadOrigins`, { timeout: scaled(120_000, 30 * 60_000) }, async () => {
    const seed = chaosSeed();
    console.log(`chaos hostile-api: seed ${seed} (CHAOS_SEED=${seed} replays it)`);
    const random = seededRandom(seed);
    canary = await startCanary();
    const sandbox = await startSandbox({ apiKey: CANARY_KEY });
    const hosts: Hosts = { sandbox: new URL(sandbox.url).host, canary: `127.0.0.1:${canary.port}` };
    const workspace = createWorkspace(tempDir(), sandbox, { apiKey: CANARY_KEY, uploads: { concurrency: 2 } });
    const daemon = startDaemon(workspace);
    await daemon.ready();

    const outcomes: Outcome[] = [];
    const expectedStored: Expected[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const hostile of shuffled(CASES, random)) {
        // One file at a time: each fault must be consumed by this file's call, and only by it.
        const path = join(workspace.inbox, `round ${round} ${hostile.name}.wav`);
        const bytes = pcmWav(between(random, 20_000, 200_000));
        const before = sandbox.requests().length;
        sandbox.faults.add(hostile.fault(hosts, `round ${round} ${hostile.name}.wav`));
        writeFileSync(path, bytes);
        if (hostile.outcome === 'recovered') expectedStored.push({ path, sha256: createHash('sha256').update(bytes).digest('hex') });
        await daemon.waitForLog((r) => r.event === 'transition' && r.file === path && FINAL_STATES.includes(r.to as string), 30_000);
        outcomes.push({
          name: hostile.name,
          path,
          transitions: daemon.logs.filter((r) => r.event === 'transition' && r.file === path),
          requests: sandbox.requests().slice(before),
        });
      }
    }

    const jobs = new Map((await listJobs(workspace)).map((job) => [job.path, job]));
    const listText = runCli(workspace, ['list']);
    const statusText = runCli(workspace, ['status', '--json']);
    expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const problems: string[] = [];
    let refused = 0;
    let recovered = 0;
    for (const outcome of outcomes) {
      const hostile = CASES.find((c) => c.name === outcome.name)!;
      const job = jobs.get(outcome.path);
      problems.push(...judge(hostile, outcome, job, sandbox).map((problem) => `${outcome.name}: ${problem}`));
      if (job?.state === 'failed') refused++;
      if (job?.state === 'done') recovered++;
    }

    const result = audit(workspace, sandbox, expectedStored);
    const leaks = secretLeaks([daemon.output, listText.stdout, listText.stderr, statusText.stdout, JSON.stringify([...jobs.values()])], workspace);
    report({
      checksPassed:
        problems.length === 0 && canary.connections === 0 && result.maxSessionIdsPerVersion === 1 && result.unfinished.length === 0 && result.integrity === 'ok' && leaks.length === 0,
      scenario: 'hostile API answers',
      rounds: ROUNDS,
      files: outcomes.length,
      lost: result.lost,
      duplicated: result.duplicated,
      corrupted: result.corrupted,
      extra: { canaryConnections: canary.connections, refused, recovered, problems: problems.length, secretLeaks: leaks.length, seed },
    });
    expect(problems).toEqual([]);
    expect({ connections: canary.connections, requests: canary.requests }).toEqual({ connections: 0, requests: [] });
    expect(result).toMatchObject({ lost: 0, duplicated: 0, corrupted: 0, maxSessionIdsPerVersion: 1, unfinished: [], integrity: 'ok' });
    expect(leaks).toEqual([]);
    expect(listText.status).toBe(0);
  });
});

/** Everything wrong with one case's ending, as sentences; empty when it ended as documented. */
function judge(hostile: Case, outcome: Outcome, job: JobView | undefined, sandbox: Sandbox): string[] {
  if (!job) return ['no row in list --json'];
  const problems: string[] = [];
  const mine = outcome.requests.filter((r) => r.sessionId === job.sessionId);
  const count = (endpoint: string): number => mine.filter((r) => r.endpoint === endpoint).length;
  const stored = sandbox.objects().filter((o) => o.sessionId === job.sessionId);
  const retried = outcome.transitions.find((r) => r.to === 'retrying');
  if (hostile.outcome === 'failed') {
    if (job.state !== 'failed') problems.push(`ended ${job.state}, expected failed (error: ${job.error})`);
    if (!hostile.reason.test(job.error ?? '')) problems.push(`error ${JSON.stringify(job.error)} does not name the problem (${hostile.reason})`);
    if (/pw@|\?X-Goog|X-Goog-Signature/i.test(job.error ?? '')) problems.push(`error ${JSON.stringify(job.error)} quotes credentials`);
    // No blind retry of a hostile answer: one API call, and a PUT only where storage itself redirected.
    if (count('multi-upload') !== 1) problems.push(`${count('multi-upload')} multi-upload calls, expected 1`);
    if (retried) problems.push(`went through retrying (${String(retried.reason)})`);
    if (stored.length !== 0) problems.push(`${stored.length} object(s) stored`);
  } else {
    if (job.state !== 'done') problems.push(`ended ${job.state}, expected done (error: ${job.error})`);
    if (!retried) problems.push('never went through retrying');
    else if (!hostile.reason.test(String(retried.reason))) problems.push(`retry reason ${JSON.stringify(retried.reason)} does not name the problem (${hostile.reason})`);
    if (count('multi-upload') !== 2) problems.push(`${count('multi-upload')} multi-upload calls, expected 2 (the hostile one, then an honest one)`);
    if (stored.length !== 1) problems.push(`${stored.length} object(s) stored, expected 1`);
  }
  const puts = outcome.requests.filter((r) => r.endpoint === 'put').length;
  if (puts !== hostile.puts) problems.push(`${puts} PUT(s) reached storage, expected ${hostile.puts}`);
  return problems;
}

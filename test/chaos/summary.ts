import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { RESULTS_FILE } from './harness.js';

/**
 * vitest globalSetup for `npm run test:chaos`: starts an empty results file
 * and prints every scenario's figures as one table when the run ends.
 */
export default function setup(): () => void {
  rmSync(RESULTS_FILE, { force: true });
  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  return () => {
    if (!existsSync(RESULTS_FILE)) return;
    const rows = readFileSync(RESULTS_FILE, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    const header = ['scenario', 'rounds', 'files', 'lost', 'duplicated', 'corrupted', 'result', 'details'];
    const cells = rows.map((r) => [
      String(r.scenario), String(r.rounds), String(r.files), String(r.lost), String(r.duplicated), String(r.corrupted), String(r.result),
      Object.entries((r.extra as Record<string, unknown>) ?? {}).map(([k, v]) => `${k}=${v}`).join(' '),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
    const line = (c: string[]) => `| ${c.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
    console.log(['', 'Reliability figures:', line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n'));
  };
}

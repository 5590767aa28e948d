#!/usr/bin/env node
/*
 * Summarises V8 CPU profiles (`node --cpu-prof`) of our processes: where the
 * CPU time went, by package or source file, by function (self), and by our
 * own functions including what they call (inclusive).
 *
 *   node bench/tools/profile.mjs FILE.cpuprofile [--top=25]
 *
 * Get profiles from any benchmark with
 *   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' node bench/run.mjs --quick --only=startup
 * (one file per process; the daemon's is the largest). Paths under dist/
 * are shown as the src/ module they are built from.
 */
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) {
  console.error('usage: node bench/tools/profile.mjs FILE.cpuprofile… [--top=N]');
  process.exit(2);
}

/** Which module a frame belongs to: src/… for ours, the package for node_modules, node: for Node's own. */
function place(url) {
  if (!url) return '';
  const dist = /\/dist\/(.*)\.js$/.exec(url);
  if (dist) return `src/${dist[1]}.ts`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

function summarise(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const label = (n) => {
    const { functionName, url, lineNumber } = n.callFrame;
    const where = place(url);
    return where ? `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}` : functionName || '(anonymous)';
  };
  const self = new Map();
  const byPlace = new Map();
  const inclusive = new Map();
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = nodes.get(id);
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      return;
    }
    total += dt;
    const key = label(node);
    self.set(key, (self.get(key) ?? 0) + dt);
    const where = place(node.callFrame.url) || node.callFrame.functionName;
    byPlace.set(where, (byPlace.get(where) ?? 0) + dt);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = nodes.get(at);
      if (!/\/dist\//.test(frame.callFrame.url)) continue;
      const k = label(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  });
  const wall = (profile.endTime - profile.startTime) / 1000;
  const show = (title, map) => {
    console.log(`\n  ${title}`);
    for (const [key, ms] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`  ${ms.toFixed(0).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${key}`);
    }
  };
  console.log(`\n${file}\n  wall ${(wall / 1000).toFixed(2)} s, on CPU ${(total / 1000).toFixed(2)} s, idle ${(idle / 1000).toFixed(2)} s`);
  show('self time by module or package', byPlace);
  show('self time by function', self);
  show('our functions, inclusive (what they call included)', inclusive);
}

for (const file of files) summarise(file);

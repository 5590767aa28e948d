#!/usr/bin/env node
/*
 * Summarises V8 CPU profiles (`node --cpu-prof`) of our processes: where the
 * CPU time went, by package or source file, by function (self), and by our
 * own functions including what they call (inclusive).
 *
 *   node bench/tools/profile.mjs FILE.cpuprofile [--top=25] [--until=MS]
 * (--until: only the first MS ms of the profile, e.g. a startup's spawn → ready)
 *
 * Get profiles from any benchmark with
 *   BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' node bench/run.mjs --quick --only=startup
 * (one file per process; the daemon's is the largest; add --keep so the
 * build's source maps are still there). Functions in the build are shown at
 * their src/ file and line, through its source maps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const B64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]));

/** Source map v3 `mappings` → per generated line, segments [column, source, line, column] (absolute). */
function decodeMappings(mappings) {
  const lines = [];
  const state = [0, 0, 0, 0];
  for (const line of mappings.split(';')) {
    const segments = [];
    state[0] = 0;
    for (const segment of line.split(',')) {
      if (!segment) continue;
      const values = [];
      let value = 0;
      let shift = 0;
      for (const char of segment) {
        const digit = B64.get(char);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      for (let i = 0; i < values.length; i++) state[i] += values[i];
      if (values.length >= 4) segments.push([...state]);
    }
    lines.push(segments);
  }
  return lines;
}

const maps = new Map();
/** The src/ file and line a compiled dist/ position comes from, through the build's source maps. */
function original(url, line, column) {
  if (!url.startsWith('file://') || !url.endsWith('.js')) return undefined;
  const file = fileURLToPath(url);
  if (!maps.has(file)) {
    const mapFile = `${file}.map`;
    if (!existsSync(mapFile)) maps.set(file, null);
    else {
      const map = JSON.parse(readFileSync(mapFile, 'utf8'));
      maps.set(file, { sources: map.sources.map((s) => resolve(dirname(file), map.sourceRoot ?? '', s)), lines: decodeMappings(map.mappings) });
    }
  }
  const map = maps.get(file);
  const segments = map?.lines[line];
  if (!segments?.length) return undefined;
  let best = segments[0];
  for (const segment of segments) if (segment[0] <= column) best = segment;
  // A private build's sources point into the repo's src/ through relative paths; show them from the repo root.
  const source = map.sources[best[1]];
  const shown = source.includes('/src/') ? `src/${source.split('/src/').at(-1)}` : relative(REPO, source);
  return `${shown}:${best[2] + 1}`;
}

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith('--top='))?.slice(6) ?? 25);
const until = Number(args.find((a) => a.startsWith('--until='))?.slice(8) ?? Infinity);
const files = args.filter((a) => !a.startsWith('--'));
if (files.length === 0) {
  console.error('usage: node bench/tools/profile.mjs FILE.cpuprofile… [--top=N] [--until=MS]');
  process.exit(2);
}

/** Which module a frame belongs to: src/… for ours, the package for node_modules, node: for Node's own. */
function place(url) {
  if (!url) return '';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  const dist = /\/dist\/(.*)\.js$/.exec(url);
  if (dist) return `src/${dist[1]}.ts`;
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

/** Our compiled code: a dist/ directory that is not a dependency's. */
const ours = (url) => /\/dist\//.test(url) && !url.includes('/node_modules/');

function summarise(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const label = (n) => {
    const { functionName, url, lineNumber, columnNumber } = n.callFrame;
    const name = functionName || '(anonymous)';
    const mapped = ours(url) ? original(url, lineNumber, columnNumber) : undefined;
    if (mapped) return `${name} ${mapped}`;
    const where = place(url);
    return where ? `${name} ${where}:${lineNumber + 1}` : name;
  };
  const self = new Map();
  const byPlace = new Map();
  const inclusive = new Map();
  let total = 0;
  let idle = 0;
  let at = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    at += dt;
    if (at > until) return;
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
      if (!ours(frame.callFrame.url)) continue;
      const k = label(frame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  });
  const wall = Math.min((profile.endTime - profile.startTime) / 1000, until);
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

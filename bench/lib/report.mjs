/*
 * One row per figure. `ours` and `baseline` are numbers in `unit`; `ratio`
 * is ours/baseline; `target` says which side of `limit` passes, for the
 * ratio (relative figures) or for `ours` itself (absolute figures, which
 * have no baseline and say so).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { round } from './util.mjs';

/** Whether `value` is a number on the right side of the one limit given. */
const meets = (value, atLeast, atMost) => Number.isFinite(value) && (atLeast !== undefined ? value >= atLeast : value <= atMost);

/** `between: [low, high]` instead of one limit: the ratio must lie in that band (a rate held to a cap). */
export function relative({ benchmark, figure, unit, ours, baseline, atLeast, atMost, between, note, details }) {
  const ratio = ours / baseline;
  const limit = atLeast ?? atMost;
  const passes = between ? Number.isFinite(ratio) && ratio >= between[0] && ratio <= between[1] : meets(ratio, atLeast, atMost);
  return {
    benchmark,
    figure,
    unit,
    ours: round(ours, 3),
    baseline: round(baseline, 3),
    ratio: round(ratio, 3),
    target: between ? `ratio ${between[0]}–${between[1]}` : `ratio ${atLeast !== undefined ? '≥' : '≤'} ${limit}`,
    result: passes ? 'PASS' : 'FAIL',
    ...(note ? { note } : {}),
    ...(details ? { details } : {}),
  };
}

export function absolute({ benchmark, figure, unit, ours, atLeast, atMost, note, details }) {
  const limit = atLeast ?? atMost;
  return {
    benchmark,
    figure,
    unit,
    ours: round(ours, 3),
    baseline: null,
    ratio: null,
    target: `${atLeast !== undefined ? '≥' : '≤'} ${limit} ${unit} (absolute, no baseline)`,
    result: meets(ours, atLeast, atMost) ? 'PASS' : 'FAIL',
    ...(note ? { note } : {}),
    ...(details ? { details } : {}),
  };
}

/** A figure reported for understanding, with no target. */
export function info({ benchmark, figure, unit, ours, baseline, note, details }) {
  return {
    benchmark,
    figure,
    unit,
    ours: round(ours, 3),
    baseline: baseline === undefined ? null : round(baseline, 3),
    ratio: baseline === undefined ? null : round(ours / baseline, 3),
    target: '—',
    result: 'INFO',
    ...(note ? { note } : {}),
    ...(details ? { details } : {}),
  };
}

export function failed(benchmark, error, result = 'ERROR') {
  const message = error instanceof Error ? error.message : String(error);
  return { benchmark, figure: result === 'SKIP' ? '(skipped)' : '(error)', unit: '', ours: null, baseline: null, ratio: null, target: '—', result, note: message.split('\n')[0].slice(0, 400), ...(result === 'ERROR' ? { details: { error: message.slice(0, 4000) } } : {}) };
}

function cell(value, unit) {
  if (value === null || value === undefined) return '—';
  if (typeof value !== 'number') return String(value);
  const text = Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
  return unit ? `${text} ${unit}` : text;
}

export function table(rows) {
  const header = ['benchmark', 'figure', 'ours', 'baseline', 'ratio', 'target', 'result'];
  const body = rows.map((r) => [r.benchmark, r.figure, cell(r.ours, r.unit), cell(r.baseline, r.unit), r.ratio === null ? '—' : `${cell(r.ratio)}×`, r.target, r.result]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const b of body) out.push(line(b));
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.benchmark} / ${r.figure}: ${r.note}`);
  return [...out, ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n');
}

export function writeResults(dir, result) {
  mkdirSync(dir, { recursive: true });
  const text = `${JSON.stringify(result, null, 2)}\n`;
  writeFileSync(`${dir}/latest.json`, text);
  writeFileSync(`${dir}/${result.mode}-${result.startedAt.replace(/[:.]/g, '-')}.json`, text);
}

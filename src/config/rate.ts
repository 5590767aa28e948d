import { z } from 'zod';

/*
 * Transfer rates as people write them: `4 MB/s`, `20 Mbit/s`, `512 KiB/s`,
 * or `off` for no limit. The grammar is `<number>[ ]<unit>/s` with units
 * B, kB, KB, MB, GB (powers of 1000), KiB, MiB, GiB (powers of 1024) and
 * bit, kbit, Kbit, Mbit, Gbit. A YAML number is bytes per second.
 *
 * Units are case-sensitive because B and b differ eightfold: a unit that
 * could be read either way (`Mb/s`, `mbps`) is refused with both readings
 * rather than guessed. k and K both mean 1000; 1024 is always spelt with i.
 *
 * Like the fields in `fields.ts`, every error is an "expected …" phrase;
 * the caller adds the value it was given.
 */

export type RateResult = { ok: true; bytesPerSecond: number | null } | { ok: false; error: string };

const BYTES_PER_UNIT = new Map<string, number>([
  ['B', 1],
  ['kB', 1e3],
  ['KB', 1e3],
  ['MB', 1e6],
  ['GB', 1e9],
  ['KiB', 1024],
  ['MiB', 1024 ** 2],
  ['GiB', 1024 ** 3],
  ['bit', 1 / 8],
  ['kbit', 1e3 / 8],
  ['Kbit', 1e3 / 8],
  ['Mbit', 1e6 / 8],
  ['Gbit', 1e9 / 8],
]);

/**
 * Below this a limit is almost surely a slip (`4 B/s` for `4 MB/s`, or 0
 * meant as "no limit"): at 1 kB/s a 1 GB mix already takes 11 days.
 */
const MIN_BYTES_PER_SECOND = 1000;

const EXAMPLES = '"4 MB/s", "20 Mbit/s", "512 KiB/s"';

/** `bytesPerSecond` is a whole number, or null for `off` (unlimited). */
export function parseRate(text: string | number): RateResult {
  return readRate(text, ['off']);
}

/**
 * The config field for a rate: a string or number in, bytes per second or
 * null (`off`) out. `keywords` are further words the key accepts as they
 * are, such as a schedule window's `pause`.
 */
export function rate<const Keyword extends string = never>(...keywords: Keyword[]) {
  const isKeyword = (value: string | number): value is Keyword => (keywords as readonly unknown[]).includes(value);
  const words = ['off', ...keywords];
  return z.union([z.string(), z.number()], { error: expectedRate(words) }).transform((value, ctx) => {
    if (isKeyword(value)) return value;
    const parsed = readRate(value, words);
    if (parsed.ok) return parsed.bytesPerSecond;
    ctx.addIssue({ code: 'custom', message: parsed.error, input: value });
    return z.NEVER;
  });
}

/** Three significant digits in decimal units, as status lines show it: `4 MB/s`, `2.5 MB/s`, `524 kB/s`. */
export function formatRate(bytesPerSecond: number | null): string {
  if (bytesPerSecond === null) return 'off';
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s'];
  let scaled = bytesPerSecond;
  let unit = 0;
  // Rounding first, so 999,999 B/s reads 1 MB/s rather than 1000 kB/s.
  while (unit < units.length - 1 && threeDigits(scaled) >= 1000) {
    scaled /= 1000;
    unit += 1;
  }
  return `${threeDigits(scaled)} ${units[unit]}`;
}

function threeDigits(value: number): number {
  return Number(value.toPrecision(3));
}

function readRate(value: string | number, keywords: readonly string[]): RateResult {
  if (typeof value === 'number') return atLeastMinimum(value, keywords);
  const text = value.trim();
  if (text === 'off') return { ok: true, bytesPerSecond: null };
  const match = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)(.*)$/.exec(text);
  if (match === null) return failure(expectedRate(keywords));
  const [, amount = '', unit = '', afterUnit] = match;
  if (unit === '' && afterUnit === '') {
    return failure(`expected a unit after the number, as in "${amount} MB/s" or "${amount} Mbit/s"`);
  }
  const bytesPerUnit = BYTES_PER_UNIT.get(unit);
  if (bytesPerUnit === undefined) return failure(unitHint(amount, unit) ?? expectedRate(keywords));
  if (afterUnit !== '/s') return failure(`expected "/s" after the unit, as in "${amount} ${unit}/s"`);
  return atLeastMinimum(Number(amount) * bytesPerUnit, keywords);
}

function atLeastMinimum(bytesPerSecond: number, keywords: readonly string[]): RateResult {
  if (!Number.isFinite(bytesPerSecond)) return failure(expectedRate(keywords));
  if (bytesPerSecond < MIN_BYTES_PER_SECOND) {
    return failure('expected at least 1 kB/s (1000 bytes per second), or "off" for no limit');
  }
  return { ok: true, bytesPerSecond: Math.round(bytesPerSecond) };
}

/**
 * What a unit that is not ours most likely meant: one spelling when it says
 * bits or bytes in some other case (`mbit`, `MBps`), both when a lone `b`
 * leaves it open (`Mb`, `mbps`).
 */
function unitHint(amount: string, unit: string): string | undefined {
  const match = /^(?:([kmg])(i?))?(bits?|bytes?|b|bps)$/i.exec(unit);
  if (match === null) return undefined;
  const [, prefix = '', binary, quantity = ''] = match;
  const decimal = prefix.toLowerCase() === 'k' ? 'k' : prefix.toUpperCase();
  const bytes = `"${amount} ${binary ? `${prefix.toUpperCase()}i` : decimal}B/s"`;
  const bits = `"${amount} ${decimal}bit/s"`;
  if (/^bit/i.test(quantity)) return binary ? undefined : `expected ${bits}`;
  if (binary || /^byte/i.test(quantity) || quantity.startsWith('B')) return `expected ${bytes}`;
  return `expected ${bits} (bits) or ${bytes} (bytes)`;
}

function expectedRate(keywords: readonly string[]): string {
  const quoted = keywords.map((word) => `"${word}"`);
  return `expected a rate such as ${[EXAMPLES, ...quoted.slice(0, -1)].join(', ')} or ${quoted.at(-1)}`;
}

function failure(error: string): RateResult {
  return { ok: false, error };
}

import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { errorMap, toConfigError } from '../../src/config/issues.js';
import { formatRate, parseRate, rate } from '../../src/config/rate.js';

const ANY_RATE = 'expected a rate such as "4 MB/s", "20 Mbit/s", "512 KiB/s" or "off"';
const AT_LEAST_1_KB = 'expected at least 1 kB/s (1000 bytes per second), or "off" for no limit';

describe('parseRate', () => {
  it.each<[string | number, number | null]>([
    ['4 MB/s', 4_000_000],
    ['4MB/s', 4_000_000],
    ['  4 MB/s ', 4_000_000],
    ['2.5 MB/s', 2_500_000],
    ['1 GB/s', 1_000_000_000],
    ['1 kB/s', 1000],
    ['1 KB/s', 1000],
    ['1000 B/s', 1000],
    ['512 KiB/s', 524_288],
    ['1 MiB/s', 1_048_576],
    ['1 GiB/s', 1_073_741_824],
    ['20 Mbit/s', 2_500_000],
    ['8 kbit/s', 1000],
    ['8 Kbit/s', 1000],
    ['1 Gbit/s', 125_000_000],
    ['8000 bit/s', 1000],
    // 1.1 × 10⁶ is 1100000.0000000002 in floating point; rates are whole bytes.
    ['1.1 MB/s', 1_100_000],
    ['off', null],
    [4_000_000, 4_000_000],
    [1000, 1000],
    [1500.6, 1501],
  ])('reads %j', (text, bytesPerSecond) => {
    expect(parseRate(text)).toEqual({ ok: true, bytesPerSecond });
  });

  it.each<[string, string]>([
    ['20 Mb/s', 'expected "20 Mbit/s" (bits) or "20 MB/s" (bytes)'],
    ['20 mb/s', 'expected "20 Mbit/s" (bits) or "20 MB/s" (bytes)'],
    ['20 Mbps', 'expected "20 Mbit/s" (bits) or "20 MB/s" (bytes)'],
    ['20 mbps', 'expected "20 Mbit/s" (bits) or "20 MB/s" (bytes)'],
    ['64 kb/s', 'expected "64 kbit/s" (bits) or "64 kB/s" (bytes)'],
    ['64 Kb/s', 'expected "64 kbit/s" (bits) or "64 kB/s" (bytes)'],
    ['8000 bps', 'expected "8000 bit/s" (bits) or "8000 B/s" (bytes)'],
    ['20 mbit/s', 'expected "20 Mbit/s"'],
    ['20 MBit/s', 'expected "20 Mbit/s"'],
    ['20 Mbits/s', 'expected "20 Mbit/s"'],
    ['4 mB/s', 'expected "4 MB/s"'],
    ['4 MBps', 'expected "4 MB/s"'],
    ['4 Mbyte/s', 'expected "4 MB/s"'],
    ['4 gb/s', 'expected "4 Gbit/s" (bits) or "4 GB/s" (bytes)'],
    ['512 kib/s', 'expected "512 KiB/s"'],
    ['512 KIB/s', 'expected "512 KiB/s"'],
    ['4 MB', 'expected "/s" after the unit, as in "4 MB/s"'],
    ['4 MB/sec', 'expected "/s" after the unit, as in "4 MB/s"'],
    ['4 MB/S', 'expected "/s" after the unit, as in "4 MB/s"'],
    ['4 MB / s', 'expected "/s" after the unit, as in "4 MB/s"'],
    ['4000000', 'expected a unit after the number, as in "4000000 MB/s" or "4000000 Mbit/s"'],
    ['0 MB/s', AT_LEAST_1_KB],
    ['999 B/s', AT_LEAST_1_KB],
    ['7999 bit/s', AT_LEAST_1_KB],
    ['4 B/s', AT_LEAST_1_KB],
    ['fast', ANY_RATE],
    ['', ANY_RATE],
    ['Off', ANY_RATE],
    ['unlimited', ANY_RATE],
    ['-4 MB/s', ANY_RATE],
    ['4,5 MB/s', ANY_RATE],
    ['4 TB/s', ANY_RATE],
    ['4 Mibit/s', ANY_RATE],
    ['1e6 B/s', ANY_RATE],
  ])('refuses %j', (text, error) => {
    expect(parseRate(text)).toEqual({ ok: false, error });
  });

  it.each<[number, string]>([
    [0, AT_LEAST_1_KB],
    [-5, AT_LEAST_1_KB],
    [999.4, AT_LEAST_1_KB],
    [Number.POSITIVE_INFINITY, ANY_RATE],
    [Number.NaN, ANY_RATE],
  ])('refuses the number %d', (value, error) => {
    expect(parseRate(value)).toEqual({ ok: false, error });
  });
});

describe('formatRate', () => {
  it.each<[number | null, string]>([
    [null, 'off'],
    [500, '500 B/s'],
    [1000, '1 kB/s'],
    [524_288, '524 kB/s'],
    [999_999, '1 MB/s'],
    [2_500_000, '2.5 MB/s'],
    [4_000_000, '4 MB/s'],
    [1_234_567, '1.23 MB/s'],
    [125_000_000, '125 MB/s'],
    [1_073_741_824, '1.07 GB/s'],
    [2e15, '2000 TB/s'],
  ])('shows %j as %s', (bytesPerSecond, text) => {
    expect(formatRate(bytesPerSecond)).toBe(text);
  });

  it('reads back what it writes', () => {
    for (const text of ['4 MB/s', '2.5 MB/s', '512 kB/s', '1 GB/s', 'off']) {
      const parsed = parseRate(text);
      expect(parsed.ok && formatRate(parsed.bytesPerSecond)).toBe(text);
    }
  });
});

describe('rate() as a config field', () => {
  const config = z.strictObject({ uploads: z.strictObject({ maxBytesPerSecond: rate(), windowLimit: rate('pause').optional() }) });

  function read(yaml: string): unknown {
    const result = config.safeParse(parseYaml(yaml), { error: errorMap, reportInput: true });
    if (result.success) return result.data;
    return toConfigError(result.error).message;
  }

  it('turns YAML into bytes per second, with off (not a YAML 1.1 false) as null', () => {
    expect(read('uploads: { maxBytesPerSecond: 4 MB/s }')).toEqual({ uploads: { maxBytesPerSecond: 4_000_000 } });
    expect(read('uploads: { maxBytesPerSecond: 2000000 }')).toEqual({ uploads: { maxBytesPerSecond: 2_000_000 } });
    expect(read('uploads: { maxBytesPerSecond: off }')).toEqual({ uploads: { maxBytesPerSecond: null } });
  });

  it('accepts its extra keywords as they are', () => {
    expect(read('uploads: { maxBytesPerSecond: off, windowLimit: pause }')).toEqual({
      uploads: { maxBytesPerSecond: null, windowLimit: 'pause' },
    });
    expect(read('uploads: { maxBytesPerSecond: pause }')).toBe(`config: uploads.maxBytesPerSecond: ${ANY_RATE}, got "pause"`);
  });

  it('names the key, what it expected and what it got', () => {
    expect(read('uploads: { maxBytesPerSecond: 20 Mbps }')).toBe(
      'config: uploads.maxBytesPerSecond: expected "20 Mbit/s" (bits) or "20 MB/s" (bytes), got "20 Mbps"',
    );
    expect(read('uploads: { maxBytesPerSecond: 0 }')).toBe(`config: uploads.maxBytesPerSecond: ${AT_LEAST_1_KB}, got 0`);
    expect(read('uploads: { maxBytesPerSecond: true }')).toBe(`config: uploads.maxBytesPerSecond: ${ANY_RATE}, got true`);
    expect(read('uploads: { maxBytesPerSecond: 4 MB/s, windowLimit: stop }')).toBe(
      'config: uploads.windowLimit: expected a rate such as "4 MB/s", "20 Mbit/s", "512 KiB/s", "off" or "pause", got "stop"',
    );
  });

  it('reports a missing key as missing', () => {
    expect(read('uploads: {}')).toBe(`config: uploads.maxBytesPerSecond: missing, ${ANY_RATE}`);
  });
});

import { describe, expect, it } from 'vitest';
import { PassMemory } from '../../src/watch/passMemory.js';

describe('PassMemory', () => {
  it('knows a file unchanged since the last complete pass, and nothing before the first', () => {
    const memory = new PassMemory();
    expect(memory.unchanged('/in/a.wav', { size: 1, mtimeMs: 1 })).toBe(false);
    memory.complete();
    expect(memory.unchanged('/in/a.wav', { size: 1, mtimeMs: 1 })).toBe(true);
    expect(memory.unchanged('/in/b.wav', { size: 1, mtimeMs: 1 })).toBe(false);
    memory.complete();
    expect(memory.unchanged('/in/a.wav', { size: 2, mtimeMs: 1 })).toBe(false);
    expect(memory.unchanged('/in/b.wav', { size: 1, mtimeMs: 1.5 })).toBe(false);
  });

  it('forgets files the last pass did not see, and everything after a reset', () => {
    const memory = new PassMemory();
    memory.unchanged('/in/a.wav', { size: 1, mtimeMs: 1 });
    memory.complete();
    memory.complete();
    expect(memory.unchanged('/in/a.wav', { size: 1, mtimeMs: 1 })).toBe(false);
    memory.complete();
    memory.reset();
    expect(memory.unchanged('/in/a.wav', { size: 1, mtimeMs: 1 })).toBe(false);
  });
});

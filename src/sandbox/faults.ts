import { z } from 'zod';
import type { Fault, FaultInjector, FaultTarget } from './types.js';

const times = z.int().min(1).optional();
const afterBytes = z.int().min(0);

const faultSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    target: z.enum(['multi-upload', 'mastering', 'percentage', 'multi-download', 'put', 'get']),
    kind: z.literal('status'),
    status: z.int().min(400).max(599),
    retryAfterSeconds: z.int().min(0).optional(),
    times,
  }),
  z.strictObject({ target: z.literal('put'), kind: z.literal('reset'), afterBytes, times }),
  z.strictObject({ target: z.literal('put'), kind: z.literal('stall'), afterBytes, times }),
  z.strictObject({ target: z.literal('multi-upload'), kind: z.literal('expired-url'), times }),
  z.strictObject({ target: z.literal('put'), kind: z.literal('bad-md5'), times }),
  z.strictObject({ target: z.literal('mastering'), kind: z.literal('job-failed'), times }),
]);

/** Validates a fault from code or from the control route; a string says what is wrong. */
export function readFault(value: unknown): Fault | string {
  const result = faultSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join('.') || 'fault'}: ${issue.message}`);
  return `invalid sandbox fault ${JSON.stringify(value)}: ${problems.join('; ')}`;
}

interface Pending {
  fault: Fault;
  remaining: number;
}

export class FaultQueue implements FaultInjector {
  #pending = new Map<FaultTarget, Pending[]>();
  #unauthorized = false;

  get unauthorized(): boolean {
    return this.#unauthorized;
  }

  add(fault: Fault): void {
    const valid = readFault(fault);
    if (typeof valid === 'string') throw new TypeError(valid);
    const queue = this.#pending.get(valid.target) ?? [];
    queue.push({ fault: valid, remaining: valid.times ?? 1 });
    this.#pending.set(valid.target, queue);
  }

  clear(): void {
    this.#pending.clear();
  }

  setUnauthorized(on: boolean): void {
    this.#unauthorized = on;
  }

  /** Consumes one use of the oldest fault for this target, if any. */
  take(target: FaultTarget): Fault | undefined {
    const queue = this.#pending.get(target);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    head.remaining -= 1;
    if (head.remaining === 0) queue.shift();
    return head.fault;
  }
}

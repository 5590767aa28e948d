import { z } from 'zod';
import type { Fault, FaultInjector, FaultTarget } from './types.js';

const times = z.int().min(1).optional();
const afterBytes = z.int().min(0);
/** Whatever a hostile server might send, as long as Node can still write it as a header. */
const headerValue = z.string().regex(/^[\x20-\x7e]+$/, 'expected printable ASCII, as a header value must be');

const faultSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    target: z.enum(['multi-upload', 'mastering', 'percentage', 'multi-download', 'put', 'get']),
    kind: z.literal('status'),
    status: z.int().min(400).max(599),
    retryAfterSeconds: z.int().min(0).optional(),
    times,
  }),
  z.strictObject({ target: z.literal('put'), kind: z.literal('reset'), afterBytes, times }),
  z.strictObject({ target: z.enum(['put', 'get']), kind: z.literal('stall'), afterBytes, forMs: z.int().min(1).optional(), times }),
  z.strictObject({ target: z.enum(['multi-upload', 'multi-download']), kind: z.literal('expired-url'), times }),
  z.strictObject({ target: z.literal('put'), kind: z.literal('bad-md5'), times }),
  z.strictObject({ target: z.literal('mastering'), kind: z.literal('job-failed'), times }),
  z.strictObject({ target: z.literal('mastering'), kind: z.literal('stuck-pending'), times }),
  z.strictObject({
    target: z.enum(['multi-upload', 'put']),
    kind: z.literal('redirect'),
    location: headerValue,
    status: z.literal([301, 302, 303, 307, 308]).optional(),
    times,
  }),
  z.strictObject({ target: z.literal('multi-upload'), kind: z.literal('signed-url'), url: z.string(), times }),
  z.strictObject({ target: z.literal('multi-upload'), kind: z.literal('other-object'), objectName: z.string().min(1).optional(), times }),
  z.strictObject({
    target: z.literal('multi-upload'),
    kind: z.literal('missing-field'),
    field: z.enum(['data', 'upload_folder_name', 'upload_object_names']),
    times,
  }),
  z.strictObject({ target: z.literal('multi-upload'), kind: z.literal('malformed-json'), times }),
  z.strictObject({ target: z.literal('multi-upload'), kind: z.literal('huge-json'), bytes: z.int().min(1).max(2 ** 32), times }),
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

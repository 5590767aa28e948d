import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach } from 'vitest';
import type { Sandbox } from '../../src/sandbox/index.js';

/** One storage PUT as the sandbox's server saw it. Times are performance.now() of this process. */
export interface TimedPut {
  /** The object's path, `/storage/…/name` without the signature: one Session-Id's file. */
  object: string;
  start: number;
  /** When its response was sent or its connection closed, whichever came first; undefined while it runs. */
  end?: number;
  /** The answer's status, 0 when the client went away first. */
  status: number;
}

export interface PutRecorder {
  puts(): TimedPut[];
  stop(): void;
}

/**
 * Times every storage PUT the in-process `sandbox` receives, from its first
 * byte to its answer or the client going away (the sandbox's own request log
 * keeps no times). Uses node:http's diagnostics channel, so the sandbox
 * needs no hook; call `stop` when done.
 */
export function recordStoragePuts(sandbox: Sandbox): PutRecorder {
  const port = Number(new URL(sandbox.url).port);
  const storagePath = new URL(sandbox.storageOrigin).pathname;
  const puts: TimedPut[] = [];
  const onRequest = (message: unknown) => {
    const { request, response, socket } = message as { request: IncomingMessage; response: ServerResponse; socket: Socket };
    if (socket.localPort !== port || request.method !== 'PUT' || !request.url?.startsWith(storagePath)) return;
    const put: TimedPut = { object: new URL(request.url, sandbox.url).pathname, start: performance.now(), status: 0 };
    puts.push(put);
    response.once('close', () => {
      put.end = performance.now();
      if (response.writableFinished) put.status = response.statusCode;
    });
  };
  subscribe('http.server.request.start', onRequest);
  return {
    puts: () => puts.map((put) => ({ ...put })),
    stop: () => unsubscribe('http.server.request.start', onRequest),
  };
}

/** Pairs of PUTs of the same object that ran at the same time (one still running counts as running until now). */
export function overlappingPuts(puts: readonly TimedPut[]): [TimedPut, TimedPut][] {
  const now = performance.now();
  const byObject = new Map<string, TimedPut[]>();
  for (const put of puts) byObject.set(put.object, [...(byObject.get(put.object) ?? []), put]);
  const overlaps: [TimedPut, TimedPut][] = [];
  for (const same of byObject.values()) {
    const sorted = [...same].sort((a, b) => a.start - b.start);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length && sorted[j]!.start < (sorted[i]!.end ?? now); j++) overlaps.push([sorted[i]!, sorted[j]!]);
    }
  }
  return overlaps;
}

/** Recorders stopped after each test, whatever happened. */
export function useStoragePuts(): (sandbox: Sandbox) => PutRecorder {
  const recorders: PutRecorder[] = [];
  afterEach(() => {
    for (const recorder of recorders.splice(0)) recorder.stop();
  });
  return (sandbox) => {
    const recorder = recordStoragePuts(sandbox);
    recorders.push(recorder);
    return recorder;
  };
}

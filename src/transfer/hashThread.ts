import { Worker } from 'node:worker_threads';
import { TransientError } from '../errors.js';
import { HashProtocolError } from './errors.js';
import type { HashReply, HashRequest, HashSpec } from './hashProtocol.js';

/** Long enough for a burst of files to share one thread, short enough that an idle daemon does not carry its isolate. */
const IDLE_MS = 10_000;

/**
 * The worker's script: plain JavaScript beside this module, in src/ (run by
 * the tests) as in dist/ and the installed package, where tsc emits it.
 */
const WORKER_SCRIPT = new URL('./hashWorker.js', import.meta.url);

/**
 * One worker thread that hashes for every transfer of the process, so the
 * main thread only reads and writes: each transfer is one HashStream over
 * memory it shares with the thread. Started at the first stream, ended
 * `idleMs` after the last one closed. It keeps the process alive only while
 * a stream is open. A thread that dies fails the streams it had (a
 * TransientError: the transfer is repeated) and the next stream starts a
 * fresh one.
 */
export class HashThread {
  readonly #idleMs: number;
  #worker: Worker | undefined;
  /** Streams open on #worker: it idles once none is. Those of a thread that stopped do not count. */
  #openOnWorker = 0;
  /** Open streams, with the thread each one hashes on: one that dies fails its own. */
  readonly #streams = new Map<number, { stream: HashStream; worker: Worker }>();
  #lastId = 0;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(options: { idleMs?: number } = {}) {
    this.#idleMs = options.idleMs ?? IDLE_MS;
  }

  /** Whether a thread is up (or starting): false before the first stream, after the idle time, and once one died. */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  /**
   * A stream hashing ranges of `memory` with each of `hashes`; the caller
   * must close it. The memory may be given to another stream once this one
   * closed: what the thread still hashes of a closed stream is for nobody,
   * and the next stream's updates come after it.
   */
  open(memory: SharedArrayBuffer, hashes: HashSpec[]): HashStream {
    const worker = this.#worker ?? this.#start();
    clearTimeout(this.#idleTimer);
    worker.ref();
    this.#openOnWorker++;
    const id = ++this.#lastId;
    const stream = new HashStream(id, memory, (request) => worker.postMessage(request), () => this.#closed(id, worker));
    this.#streams.set(id, { stream, worker });
    worker.postMessage({ kind: 'open', stream: id, memory, hashes } satisfies HashRequest);
    return stream;
  }

  /** Ends the thread now; its open streams fail as if it had died. */
  async terminate(): Promise<void> {
    clearTimeout(this.#idleTimer);
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }

  #start(): Worker {
    const worker = new Worker(WORKER_SCRIPT, {
      // The process's flags and preloads (an --import, say) are for the daemon, not for a thread that only hashes.
      execArgv: [],
      // Its heap holds a few small messages at a time.
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
    });
    this.#worker = worker;
    this.#openOnWorker = 0;
    worker.on('message', (reply: HashReply) => this.#streams.get(reply.stream)?.stream.receive(reply));
    worker.on('error', (error) => this.#stopped(worker, error.message));
    worker.on('exit', (code) => this.#stopped(worker, `it exited with code ${code}`));
    return worker;
  }

  #stopped(worker: Worker, why: string): void {
    if (this.#worker === worker) {
      this.#worker = undefined;
      clearTimeout(this.#idleTimer);
    }
    const failure = new TransientError(`the hashing thread stopped (${why}); the transfer will be repeated`);
    for (const open of this.#streams.values()) if (open.worker === worker) open.stream.fail(failure);
  }

  #closed(id: number, worker: Worker): void {
    this.#streams.delete(id);
    // A stream of a thread that stopped: that thread is gone, and the idle time of the current one is not this stream's to start.
    if (worker !== this.#worker || --this.#openOnWorker > 0) return;
    worker.unref();
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => void this.terminate(), this.#idleMs).unref();
  }
}

/** The thread every transfer of this process shares. */
export const sharedHashThread = new HashThread();

interface DigestsWaiter {
  resolve(digests: string[]): void;
  reject(error: unknown): void;
}

/**
 * One transfer's hashing: ranges of the shared memory go in, in order, and
 * each is called back once hashed (its bytes may then be reused), then the
 * digests. `signal` aborts, with a TransientError, when the thread stopped
 * before the stream was done: nothing more is called back then.
 */
export class HashStream {
  /** Shared with the hashing thread: what is written here before `update` is what gets hashed. */
  readonly memory: SharedArrayBuffer;
  readonly #id: number;
  readonly #post: (request: HashRequest) => void;
  readonly #onClose: () => void;
  /** One per update not yet answered, oldest first: the thread answers in order. */
  readonly #hashed: (() => void)[] = [];
  #digests: string[] | undefined;
  readonly #waiting = new Set<DigestsWaiter>();
  #closed = false;
  readonly #failed = new AbortController();

  constructor(id: number, memory: SharedArrayBuffer, post: (request: HashRequest) => void, onClose: () => void) {
    this.memory = memory;
    this.#id = id;
    this.#post = post;
    this.#onClose = onClose;
  }

  get signal(): AbortSignal {
    return this.#failed.signal;
  }

  /** Hashes `length` bytes of the memory from `offset`; `hashed` runs once the thread no longer reads them. */
  update(offset: number, length: number, hashed: () => void): void {
    if (this.#closed || this.#failed.signal.aborted) return;
    this.#hashed.push(hashed);
    this.#post({ kind: 'update', stream: this.#id, offset, length });
  }

  /** No more updates: the thread computes the digests, which `digests()` waits for. */
  finish(): void {
    if (this.#closed || this.#failed.signal.aborted) return;
    this.#post({ kind: 'finish', stream: this.#id });
  }

  /**
   * One per HashSpec, in their order, once `finish()` was called; any number
   * of callers may wait. Rejects with the thread's TransientError if it
   * stopped, with `signal`'s reason once it aborts (nothing else bounds the
   * wait: a `finish()` that never comes is the caller's to give up on), and
   * with a HashProtocolError if the stream closes first.
   */
  digests(signal?: AbortSignal): Promise<string[]> {
    if (this.#digests !== undefined) return Promise.resolve(this.#digests);
    if (this.#failed.signal.aborted) return Promise.reject(this.#failed.signal.reason);
    if (this.#closed) return Promise.reject(new HashProtocolError('digests asked of a closed stream'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => waiter.reject(signal?.reason);
      const waiter: DigestsWaiter = {
        resolve: (digests) => {
          signal?.removeEventListener('abort', onAbort);
          this.#waiting.delete(waiter);
          resolve(digests);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          this.#waiting.delete(waiter);
          reject(error);
        },
      };
      this.#waiting.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The transfer is over, done or abandoned: nothing is waited for, and whoever still waits for digests is refused. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hashed.length = 0;
    if (this.#digests === undefined) this.#post({ kind: 'close', stream: this.#id });
    this.#onClose();
    const refusal = new HashProtocolError('the stream closed before its digests came');
    for (const waiter of [...this.#waiting]) waiter.reject(refusal);
  }

  receive(reply: HashReply): void {
    if (this.#closed) return;
    if (reply.kind === 'hashed') {
      this.#hashed.shift()?.();
      return;
    }
    this.#digests = reply.digests;
    for (const waiter of [...this.#waiting]) waiter.resolve(reply.digests);
  }

  fail(failure: TransientError): void {
    // A thread that dies once this stream's digests are in (another stream killed it) takes nothing of this one's.
    if (this.#closed || this.#failed.signal.aborted || this.#digests !== undefined) return;
    this.#hashed.length = 0;
    this.#failed.abort(failure);
    for (const waiter of [...this.#waiting]) waiter.reject(failure);
  }
}

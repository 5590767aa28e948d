import { CryomixWatchError } from '../errors.js';

/**
 * A file operation on a folder took longer than its limit (a NAS share that
 * hangs), or came while an earlier one still had not returned. Passing: the
 * folder is looked at again once it answers.
 */
export class FolderNotAnsweringError extends CryomixWatchError {
  readonly folder: string;
  /** "a file operation took over 30 s", "no answer for 45 s", "stopping". */
  readonly reason: string;

  constructor(folder: string, reason: string) {
    super('FOLDER_NOT_ANSWERING', `${folder} is not answering (${reason}); a hung network share? Files there are looked at again once it answers`);
    this.folder = folder;
    this.reason = reason;
  }
}

export interface FolderGateOptions {
  folder: string;
  /** Operations of this folder running at once; the rest queue. */
  maxInFlight: number;
  /** An operation running longer than this marks the folder not answering. */
  timeoutMs: number;
  /** The folder stopped answering, or answers again; `since` is when it stopped (Date.now()), either way. */
  onChange(answering: boolean, since: number): void;
}

interface Waiter {
  start(): void;
  reject(error: Error): void;
}

/**
 * Every file operation on one watched folder goes through its gate. On a
 * share that hangs, each operation blocks one of libuv's threads in the
 * kernel until the share comes back, and those threads serve every other
 * folder, the database directory and DNS too: four such calls stopped a
 * whole daemon. So at most `maxInFlight` of a folder's operations run at
 * once (the rest queue), and one that runs past `timeoutMs` marks the folder
 * not answering: every caller waiting on it, running or queued, and every
 * later one gets a FolderNotAnsweringError at once (an upload reading from
 * the share gives its slot back), while the operations stay in the kernel,
 * holding their slots, until it lets them go. The folder answers again once
 * all of them have returned: that is the proof.
 */
export class FolderGate {
  readonly #options: FolderGateOptions;
  #queue: Waiter[] = [];
  /** The callers of the operations in the kernel now, each until it is answered or let go. */
  readonly #callers = new Set<(error: Error) => void>();
  #running = 0;
  /** Date.now() when the folder stopped answering; undefined while it answers. */
  #notAnsweringSince: number | undefined;
  #closed = false;

  constructor(options: FolderGateOptions) {
    this.#options = options;
  }

  get notAnsweringSince(): number | undefined {
    return this.#notAnsweringSince;
  }

  /** Operations the kernel still holds: a process that exits must not wait for them. */
  get inKernel(): number {
    return this.#running;
  }

  /** Runs `operation` (which must be one file-system call or a short chain of them) within the folder's limits. */
  run<T>(operation: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const refusal = this.#refusal();
      if (refusal) return reject(refusal);
      const waiter: Waiter = { start: () => this.#start(operation, resolve, reject), reject };
      if (this.#running < this.#options.maxInFlight) waiter.start();
      else this.#queue.push(waiter);
    });
  }

  /** Stopping: whoever waits on the folder is let go at once; operations in the kernel finish unobserved. */
  close(): void {
    this.#closed = true;
    this.#letGo();
  }

  #refusal(): FolderNotAnsweringError | undefined {
    if (this.#closed) return new FolderNotAnsweringError(this.#options.folder, 'stopping');
    if (this.#notAnsweringSince !== undefined) {
      const seconds = Math.round((Date.now() - this.#notAnsweringSince) / 1000);
      return new FolderNotAnsweringError(this.#options.folder, `no answer for ${seconds} s`);
    }
    return undefined;
  }

  #start<T>(operation: () => Promise<T>, resolve: (value: T) => void, reject: (error: unknown) => void): void {
    this.#running++;
    this.#callers.add(reject);
    const timer = setTimeout(() => {
      reject(new FolderNotAnsweringError(this.#options.folder, `a file operation took over ${Math.round(this.#options.timeoutMs / 1000)} s`));
      // Closed: nobody is waiting any more, and nobody is to be told.
      if (this.#closed || this.#notAnsweringSince !== undefined) return;
      this.#notAnsweringSince = Date.now();
      this.#letGo();
      this.#options.onChange(false, this.#notAnsweringSince);
    }, this.#options.timeoutMs);
    // A stuck operation must not keep a stopping process alive; the CLI exits past it.
    timer.unref();
    const settle = () => {
      clearTimeout(timer);
      this.#callers.delete(reject);
      this.#running--;
      if (this.#notAnsweringSince !== undefined && this.#running === 0 && !this.#closed) {
        const since = this.#notAnsweringSince;
        this.#notAnsweringSince = undefined;
        this.#options.onChange(true, since);
      }
      if (this.#running < this.#options.maxInFlight) this.#queue.shift()?.start();
    };
    let started: Promise<T>;
    try {
      started = operation();
    } catch (error) {
      started = Promise.reject(error);
    }
    started.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error);
      },
    );
  }

  /** Everyone waiting on the folder, running or queued, is refused; their operations, if started, go on unobserved. */
  #letGo(): void {
    const refusal = this.#refusal()!;
    for (const waiter of this.#queue.splice(0)) waiter.reject(refusal);
    for (const reject of this.#callers) reject(refusal);
  }
}

/** How a module runs a folder's file operations: through its gate, or directly where no folder is watched (`upload FILE`). */
export type FileOperations = <T>(operation: () => Promise<T>) => Promise<T>;

export const directly: FileOperations = (operation) => operation();

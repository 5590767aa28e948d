/**
 * What crosses between the main thread and the hashing thread. Only small
 * integers travel per block: the bytes themselves sit in memory both threads
 * share, given once when a stream opens. Types only: the worker imports
 * nothing of ours at run time.
 */

export interface HashSpec {
  algorithm: 'sha256' | 'md5';
  encoding: 'hex' | 'base64';
  /** Hash only the stream's first this many bytes; all of them when absent. */
  firstBytes?: number;
}

export type HashRequest =
  | { kind: 'open'; stream: number; memory: SharedArrayBuffer; hashes: HashSpec[] }
  /** Hash `length` bytes of the stream's memory from `offset`, after those of the updates before. */
  | { kind: 'update'; stream: number; offset: number; length: number }
  /** No more updates: answer with the digests. */
  | { kind: 'finish'; stream: number }
  /** The stream is abandoned; nothing more is answered for it. */
  | { kind: 'close'; stream: number };

export type HashReply =
  /** The oldest update not yet answered is hashed: its bytes may be overwritten. */
  | { kind: 'hashed'; stream: number }
  /** One per HashSpec, in the order they were given. */
  | { kind: 'digests'; stream: number; digests: string[] };

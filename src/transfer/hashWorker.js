import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

/**
 * The hashing thread's script (see hashThread.ts): hashes ranges of memory
 * it shares with the main thread, one stream per transfer, in the order the
 * ranges come. Plain JavaScript, type-checked through its JSDoc (checkJs),
 * so that the same file runs beside hashThread.ts in src/ (the tests) and
 * is emitted beside hashThread.js in dist/: Node 20 runs no TypeScript. It
 * imports nothing of ours at run time, only types.
 */

/** @typedef {import('./hashProtocol.js').HashRequest} HashRequest */
/** @typedef {import('./hashProtocol.js').HashReply} HashReply */
/** @typedef {import('./hashProtocol.js').HashSpec} HashSpec */
/** @typedef {{ memory: Uint8Array; hashes: { spec: HashSpec; hash: import('node:crypto').Hash; hashed: number }[] }} Stream */

const port = parentPort;
if (port === null) throw new Error('hashWorker.js runs as a worker thread (see hashThread.ts)');
/** @type {Map<number, Stream>} */
const streams = new Map();
/** @param {HashReply} message */
const reply = (message) => port.postMessage(message);

/**
 * A request it cannot serve (a stream that is not open, an algorithm
 * node:crypto does not know) is a bug on the main thread: it throws, which
 * ends this thread and fails every stream it had, loudly.
 */
port.on('message', (/** @type {HashRequest} */ request) => {
  switch (request.kind) {
    case 'open': {
      const hashes = request.hashes.map((spec) => ({ spec, hash: createHash(spec.algorithm), hashed: 0 }));
      streams.set(request.stream, { memory: new Uint8Array(request.memory), hashes });
      return;
    }
    case 'update': {
      const { memory, hashes } = streamOf(request.stream);
      for (const entry of hashes) {
        const length = Math.min(request.length, (entry.spec.firstBytes ?? Infinity) - entry.hashed);
        if (length <= 0) continue;
        entry.hash.update(memory.subarray(request.offset, request.offset + length));
        entry.hashed += length;
      }
      reply({ kind: 'hashed', stream: request.stream });
      return;
    }
    case 'finish': {
      const { hashes } = streamOf(request.stream);
      streams.delete(request.stream);
      reply({ kind: 'digests', stream: request.stream, digests: hashes.map(({ spec, hash }) => hash.digest(spec.encoding)) });
      return;
    }
    case 'close':
      streams.delete(request.stream);
      return;
  }
});

/**
 * @param {number} id
 * @returns {Stream}
 */
function streamOf(id) {
  const stream = streams.get(id);
  if (stream === undefined) throw new Error(`hash stream ${id} is not open`);
  return stream;
}

import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import type { HashReply, HashRequest, HashSpec } from './hashProtocol.js';

/**
 * The hashing thread's script (see hashThread.ts): hashes ranges of memory
 * it shares with the main thread, one stream per transfer, in the order the
 * ranges come. It must import nothing of ours at run time: from the sources
 * it runs as one module compiled in memory.
 */

interface Stream {
  memory: Uint8Array;
  hashes: { spec: HashSpec; hash: Hash; hashed: number }[];
}

const port = parentPort;
if (port === null) throw new Error('hashWorker.js runs as a worker thread (see hashThread.ts)');
const streams = new Map<number, Stream>();
const reply = (message: HashReply) => port.postMessage(message);

port.on('message', (request: HashRequest) => {
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

/** A request for a stream that is not open is a bug on the main thread: throwing ends this thread, which fails every stream loudly. */
function streamOf(id: number): Stream {
  const stream = streams.get(id);
  if (stream === undefined) throw new Error(`hash stream ${id} is not open`);
  return stream;
}

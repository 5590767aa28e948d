import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { startLocalServer, type LocalServer } from '../cryomix/localServer.js';

type Hook = (fn: () => Promise<void>) => void;

/**
 * One object that `before` refills (Object.assign) with a server `start` makes,
 * and `after` closes, so a test names it like a plain const. Both servers here
 * are plain objects of values and closures, which is what makes the refill whole.
 */
function useServer<T extends { close(): Promise<void> }>(start: () => Promise<T>, before: Hook, after: Hook): T {
  const server = {} as T;
  before(async () => {
    Object.assign(server, await start());
  });
  after(() => server.close());
  return server;
}

/** One local server for all of a file's tests: started before them, closed after; each test sets its own handler. */
export function useLocalServer(): LocalServer {
  return useServer(() => startLocalServer(), beforeAll, afterAll);
}

/** useLocalServer as the API, and an undici Agent (short keep-alive) for clients of it, destroyed after the file's tests. */
export function useLocalApi(): { api: LocalServer; agent: Agent } {
  const api = useLocalServer();
  const agent = new Agent({ keepAliveTimeout: 1_000 });
  afterAll(() => agent.destroy());
  return { api, agent };
}

/** A fresh sandbox for each test, closed after it. */
export function useSandbox(): Sandbox {
  return useServer(() => startSandbox(), beforeEach, afterEach);
}

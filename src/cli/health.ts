import { ConfigError } from '../errors.js';
import { configFrom, type GlobalOptions } from './context.js';
import { EXIT_FAILURE, EXIT_OK } from './exitCodes.js';

/**
 * Asks the running daemon's /healthz on this machine, with the token when
 * the config has one: a container's HEALTHCHECK, or a person's quick look.
 * Prints the answer; exits 0 only for 200.
 */
export async function healthCommand(options: GlobalOptions): Promise<number> {
  const { http } = configFrom(options);
  if (http === undefined) throw new ConfigError('http', 'not set: add http: { listen: 127.0.0.1:9464 } so that the daemon answers /healthz');
  // The daemon listens on the configured port; from this machine, loopback reaches it whatever address it is bound to.
  const url = `http://127.0.0.1:${http.listen.port}/healthz`;
  try {
    const answer = await fetch(url, {
      headers: http.token === undefined ? {} : { authorization: `Bearer ${http.token}` },
      signal: AbortSignal.timeout(5_000),
    });
    process.stdout.write(await answer.text());
    return answer.status === 200 ? EXIT_OK : EXIT_FAILURE;
  } catch (error) {
    process.stdout.write(`no answer from ${url}: ${(error as Error).message}; is the daemon running?\n`);
    return EXIT_FAILURE;
  }
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { SandboxContext } from './context.js';
import { readFault } from './faults.js';
import { readJsonBody, sendJson } from './respond.js';

/**
 * `/_sandbox/*`: lets a test drive a sandbox that serves a daemon in another
 * process. No key is asked: the sandbox only ever listens on loopback.
 */
export async function handleControl(
  ctx: SandboxContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
  switch (`${req.method ?? ''} ${path}`) {
    case 'POST /_sandbox/faults': {
      const fault = readFault(await readJsonBody(req));
      if (typeof fault === 'string') return sendJson(res, 400, { error: fault });
      ctx.faults.add(fault);
      return noContent(res);
    }
    case 'DELETE /_sandbox/faults':
      ctx.faults.clear();
      return noContent(res);
    case 'POST /_sandbox/unauthorized': {
      const body = z.strictObject({ on: z.boolean() }).safeParse(await readJsonBody(req));
      if (!body.success) return sendJson(res, 400, { error: 'expected {"on": true | false}' });
      ctx.faults.setUnauthorized(body.data.on);
      return noContent(res);
    }
    case 'GET /_sandbox/objects':
      return sendJson(res, 200, ctx.state.objects);
    case 'GET /_sandbox/requests':
      return sendJson(res, 200, ctx.state.requests());
    default:
      return sendJson(res, 404, { error: `no sandbox control route ${req.method ?? ''} ${path}` });
  }
}

function noContent(res: ServerResponse): void {
  res.statusCode = 204;
  res.end();
}

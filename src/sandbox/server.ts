import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_ROUTES, handleApi } from './api.js';
import type { SandboxContext } from './context.js';
import { handleControl } from './control.js';
import { sendEnvelope, sendXmlError } from './respond.js';
import { handleGet } from './storageGet.js';
import { handlePut } from './storagePut.js';

/** Routes one request to the control surface, storage, or the API. */
export function createRequestListener(ctx: SandboxContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    route(ctx, req, res).catch((error: unknown) => {
      // Mostly a client that hung up mid-body; if an answer can still go out, make the failure visible.
      if (res.headersSent || req.socket.destroyed) return void res.destroy();
      const message = error instanceof Error ? error.message : String(error);
      sendEnvelope(res, { code: 500, message: `sandbox error: ${message}` });
    });
  };
}

async function route(ctx: SandboxContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path.startsWith('/_sandbox/')) return handleControl(ctx, req, res, path);
  if (path.startsWith(ctx.storageOrigin.pathname)) {
    if (req.method === 'PUT') return handlePut(ctx, req, res);
    if (req.method === 'GET') return handleGet(ctx, req, res);
    res.setHeader('Allow', 'GET, PUT');
    return sendXmlError(res, {
      status: 405,
      code: 'MethodNotAllowed',
      message: 'The specified method is not allowed against this resource.',
    });
  }
  const endpoint = API_ROUTES.get(`${req.method ?? ''} ${path}`);
  if (endpoint) return handleApi(ctx, endpoint, req, res);
  sendEnvelope(res, { code: 404, message: `no such endpoint: ${req.method ?? ''} ${path}` });
}

import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { SandboxContext } from './context.js';
import { INVALID, download, masteringStart, percentage, upload } from './endpoints.js';
import { redirectReply, sendSpoiledEnvelope, spoilsEnvelope } from './hostile.js';
import type { JobEnding } from './mastering.js';
import { readJsonBody, sendEnvelope, type ApiReply } from './respond.js';
import type { Endpoint, Fault } from './types.js';

export type ApiEndpoint = Exclude<Endpoint, 'put' | 'get'>;

export const API_ROUTES: ReadonlyMap<string, ApiEndpoint> = new Map([
  ['POST /api/signed-url/multi-upload', 'multi-upload'],
  ['POST /api/mastering', 'mastering'],
  ['GET /api/percentage', 'percentage'],
  ['POST /api/signed-url/multi-download', 'multi-download'],
]);

const UNAUTHORIZED: ApiReply = { code: 401, message: 'unauthorized client' };

/** One API call: logged on arrival, answered in the vendor's envelope. */
export async function handleApi(
  ctx: SandboxContext,
  endpoint: ApiEndpoint,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const sessionId = header(req, 'session-id');
  const record = ctx.state.record(endpoint, sessionId ?? null);
  const fault = ctx.faults.take(endpoint);
  const reply = await answer(ctx, endpoint, req, sessionId, fault);
  record.status = reply.code;
  // Hostile bodies spoil a successful answer only; a refusal goes out as it is.
  if (reply.code === 200 && spoilsEnvelope(fault)) return sendSpoiledEnvelope(res, reply, fault);
  sendEnvelope(res, reply);
}

/** Faults act first, as an overloaded front end would answer before the application sees the call. */
async function answer(
  ctx: SandboxContext,
  endpoint: ApiEndpoint,
  req: IncomingMessage,
  sessionId: string | undefined,
  fault: Fault | undefined,
): Promise<ApiReply> {
  if (fault?.kind === 'redirect') return redirectReply(fault);
  if (fault?.kind === 'status') {
    return {
      code: fault.status,
      message: `${STATUS_CODES[fault.status] ?? 'error'} (injected by the sandbox)`,
      retryAfterSeconds: fault.retryAfterSeconds,
    };
  }
  if (ctx.faults.unauthorized || header(req, 'x-api-key') !== ctx.apiKey || header(req, 'source') !== 'Mastering API') {
    return UNAUTHORIZED;
  }
  if (sessionId === undefined) return INVALID;
  const body = endpoint === 'percentage' ? {} : await readJsonBody(req);
  if (body === undefined) return INVALID;
  switch (endpoint) {
    case 'multi-upload':
      return upload(ctx, sessionId, body, fault);
    case 'mastering':
      return masteringStart(ctx, sessionId, body, jobEnding(fault));
    case 'percentage':
      return percentage(ctx, sessionId);
    case 'multi-download':
      return download(ctx, sessionId, body, fault);
  }
}

function jobEnding(fault: Fault | undefined): JobEnding {
  if (fault?.kind === 'job-failed') return 'failed';
  if (fault?.kind === 'stuck-pending') return 'stuck-pending';
  return 'completed';
}

/** A non-empty header value; Node has already lower-cased the names. */
function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

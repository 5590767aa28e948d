#!/usr/bin/env node
/*
 * A storage sink for the benchmarks, in front of the sandbox:
 *
 *   node bench/lib/sink.mjs SANDBOX_URL    → prints "listening on http://127.0.0.1:PORT"
 *
 * The sandbox hashes every PUT with SHA-256, MD5 and a CRC32C written in
 * JavaScript, on one core: at ~190 MB/s it, not the uploader, was the limit.
 * This process takes its place for storage and only for storage:
 *
 * - Every API call (`/api/*`, `/_sandbox/*`) is passed to the sandbox as it
 *   came and its answer passed back, so the daemon talks to the real
 *   emulator: same headers, same checks, same envelopes.
 * - In a multi-upload answer, the signed URL's origin, the sandbox's
 *   storage origin, becomes this process's (`<sink>/storage/…`): path and
 *   signed query are kept. The daemon is configured with this origin in
 *   `api.uploadOrigins`, as a user would be with Google's, so its own
 *   validateSignedUrl passes it.
 * - A PUT under `/storage/` is checked as far as a process without the
 *   signing key can: a URL that this sink issued (its X-Goog-Signature),
 *   not expired, to the same path, with the Content-Type it was signed for,
 *   no unsigned `x-goog-*` or `Content-MD5`, an exact Content-Length (no
 *   chunked body). A refusal is Google's XML error, after the body was read
 *   (as the sandbox does). Then the body is read and thrown away: only
 *   counted. Node's parser ends the request only once Content-Length bytes
 *   arrived; a body cut short stores nothing.
 * - The answer is 200 with `x-goog-hash: md5=…`, the header the daemon
 *   compares with the MD5 of what it sent (src/transfer/put.ts, judge). In
 *   the default mode that MD5 is the one the harness registered for the
 *   object's name and size (POST /_sink/expect), computed by its own pass
 *   over the file: the sink does no hashing at all. With verification on
 *   (POST /_sink/verify {"on": true}), the sink computes the MD5 of what
 *   arrived with node:crypto (native) and answers that, as storage does:
 *   the harness runs one unmeasured upload of each kind so, and checks
 *   that what arrived is the file. No CRC32C is sent (Node 20 has no native
 *   CRC32C, and the daemon reads only the MD5).
 *
 * Control (never forwarded): GET /_sink/objects, POST /_sink/expect
 * {name, size, md5}, POST /_sink/verify {on}. Loopback only.
 */
import { createHash } from 'node:crypto';
import { createServer, request } from 'node:http';

const sandbox = new URL(process.argv[2] ?? '');
if (!['127.0.0.1', 'localhost', '[::1]'].includes(sandbox.hostname)) throw new Error(`sink: the sandbox must be on loopback, got ${sandbox.href}`);
const STORAGE = '/storage/';
const sandboxStorage = `${sandbox.origin}${STORAGE}`;

let front = ''; // this process's origin, known once listening
let verify = false;
/** `${name}\0${size}` → base64 MD5 the harness computed from the file */
const expected = new Map();
/** X-Goog-Signature → { path, contentType, expiresAt } of the URLs this sink handed out */
const issued = new Map();
const objects = [];

const server = createServer({ requestTimeout: 0 });
server.on('request', (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path.startsWith(STORAGE) && req.method === 'PUT') return put(req, res, path);
  if (path.startsWith(STORAGE)) return refuse(req, res, { status: 405, code: 'MethodNotAllowed', message: 'The sink takes PUTs only.' });
  (path.startsWith('/_sink/') ? control(req, res, path) : forward(req, res, path)).catch((error) => {
    if (res.headersSent) return void res.destroy();
    json(res, 500, { code: 500, message: `sink: ${error instanceof Error ? error.message : error}` });
  });
});
server.listen(0, '127.0.0.1', () => {
  front = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening on ${front}`);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

function readAll(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

function json(res, status, value) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

async function control(req, res, path) {
  const body = req.method === 'POST' ? JSON.parse((await readAll(req)).toString('utf8') || '{}') : undefined;
  switch (`${req.method} ${path}`) {
    case 'GET /_sink/objects':
      return json(res, 200, objects);
    case 'POST /_sink/expect':
      expected.set(`${body.name}\0${body.size}`, body.md5);
      return json(res, 200, { ok: true });
    case 'POST /_sink/verify':
      verify = body.on === true;
      return json(res, 200, { verify });
    default:
      return json(res, 404, { error: `no sink control route ${req.method} ${path}` });
  }
}

/** An API call, to the sandbox and back; a multi-upload answer's URLs are pointed here. */
async function forward(req, res, path) {
  const body = await readAll(req);
  const headers = { ...req.headers, host: sandbox.host, 'content-length': String(body.length) };
  for (const name of ['transfer-encoding', 'connection', 'keep-alive']) delete headers[name];
  const answer = await new Promise((resolve, reject) => {
    const out = request(new URL(req.url, sandbox), { method: req.method, headers }, resolve);
    out.once('error', (error) => reject(new Error(`the sandbox did not answer: ${error.message}`)));
    out.end(body);
  });
  let payload = await readAll(answer);
  if (req.method === 'POST' && path === '/api/signed-url/multi-upload' && answer.statusCode === 200) payload = pointUploadsHere(body, payload);
  const back = { ...answer.headers, 'content-length': String(payload.length) };
  for (const name of ['transfer-encoding', 'connection', 'keep-alive']) delete back[name];
  res.writeHead(answer.statusCode ?? 502, back);
  res.end(payload);
}

/** The multi-upload envelope with each signed URL moved from the sandbox's storage origin to this one (anything unexpected passes as it is). */
function pointUploadsHere(requestBody, payload) {
  try {
    const contentType = JSON.parse(requestBody.toString('utf8')).content_type;
    const envelope = JSON.parse(payload.toString('utf8'));
    const urls = envelope?.data?.upload_object_names;
    if (!urls || typeof urls !== 'object') return payload;
    for (const [name, raw] of Object.entries(urls)) {
      if (typeof raw !== 'string' || !raw.startsWith(sandboxStorage)) continue;
      const url = new URL(`${front}${STORAGE}${raw.slice(sandboxStorage.length)}`);
      const expires = Number(url.searchParams.get('X-Goog-Expires'));
      issued.set(url.searchParams.get('X-Goog-Signature'), { path: url.pathname, contentType, expiresAt: Date.now() + expires * 1000 });
      urls[name] = url.href;
    }
    return Buffer.from(JSON.stringify(envelope));
  } catch {
    return payload;
  }
}

/** Why Google would refuse this PUT, as far as it can be told without the signing key; undefined: take it. */
function authorize(req, path, query) {
  const signature = query.get('X-Goog-Signature');
  if (signature === null) return { status: 403, code: 'AccessDenied', message: 'Access denied.' };
  const grant = issued.get(signature);
  if (grant === undefined || grant.path !== path) return { status: 403, code: 'SignatureDoesNotMatch', message: 'The sink did not issue this URL for this path.' };
  if (Date.now() > grant.expiresAt) return { status: 400, code: 'ExpiredToken', message: 'Invalid argument.' };
  const signedHeaders = (query.get('X-Goog-SignedHeaders') ?? '').split(';');
  if (signedHeaders.includes('content-type') && req.headers['content-type'] !== grant.contentType) {
    return { status: 403, code: 'SignatureDoesNotMatch', message: `Content-Type ${req.headers['content-type']} is not the signed ${grant.contentType}.` };
  }
  const unsigned = Object.keys(req.headers).find((name) => (name.startsWith('x-goog-') || name === 'content-md5') && !signedHeaders.includes(name));
  if (unsigned !== undefined) return { status: 400, code: 'MalformedSecurityHeader', message: `Header was included in the request, but not in signedheaders: ${unsigned}` };
  if (req.headers['content-length'] === undefined || req.headers['transfer-encoding'] !== undefined) {
    return { status: 411, code: 'MissingContentLength', message: 'You must provide the Content-Length HTTP header.' };
  }
  return undefined;
}

function refuse(req, res, error) {
  req.once('end', () => {
    const body = Buffer.from(`<?xml version='1.0' encoding='UTF-8'?><Error><Code>${error.code}</Code><Message>${error.message.replace(/[<>&]/g, '')}</Message></Error>`);
    res.writeHead(error.status, { 'content-type': 'application/xml', 'content-length': body.length });
    res.end(body);
  });
  req.resume();
}

function put(req, res, path) {
  const mark = (req.url ?? '').indexOf('?');
  const query = new URLSearchParams(mark === -1 ? '' : req.url.slice(mark + 1));
  const refusal = authorize(req, path, query);
  if (refusal) return refuse(req, res, refusal);
  const name = decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
  const md5 = verify ? createHash('md5') : undefined;
  const started = Date.now();
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    md5?.update(chunk);
  });
  req.once('end', () => {
    const registered = expected.get(`${name}\0${size}`);
    const computed = md5?.digest('base64');
    const answered = computed ?? registered;
    objects.push({ name, size, contentType: req.headers['content-type'], md5: answered ?? null, computed: computed ?? null, registered: registered ?? null, startedAt: started, endedAt: Date.now() });
    const headers = { 'content-length': 0, 'x-goog-stored-content-length': String(size) };
    // Unregistered and unverified: answered as a composite object would be (no MD5); the harness counts these as failures.
    if (answered !== undefined) {
      headers['x-goog-hash'] = `md5=${answered}`;
      headers.etag = `"${Buffer.from(answered, 'base64').toString('hex')}"`;
    }
    res.writeHead(200, headers);
    res.end();
  });
}

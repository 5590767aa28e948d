import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { bytes, callApi, put, send, sha256Hex, uploadUrl } from './helpers.js';

/** The HTTP control surface, as a test driving a daemon in a child process uses it. */

let sandbox: Sandbox;
beforeEach(async () => {
  sandbox = await startSandbox();
});
afterEach(async () => {
  await sandbox.close();
});

function control(method: 'GET' | 'POST' | 'DELETE', route: string, body?: unknown): ReturnType<typeof send> {
  return send(`${sandbox.url}/_sandbox/${route}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe('sandbox control routes', () => {
  it('adds and clears faults', async () => {
    const fault = { target: 'percentage', kind: 'status', status: 502, times: 3 };
    expect((await control('POST', 'faults', fault)).status).toBe(204);
    expect((await callApi(sandbox, 'percentage')).status).toBe(502);
    expect((await control('DELETE', 'faults')).status).toBe(204);
    expect((await callApi(sandbox, 'percentage')).status).toBe(400);
  });

  it('refuses an invalid fault with 400 and says why', async () => {
    const answer = await control('POST', 'faults', { target: 'put', kind: 'reset' });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toMatchObject({ error: expect.stringContaining('afterBytes') });
  });

  it('toggles unauthorized', async () => {
    expect((await control('POST', 'unauthorized', { on: true })).status).toBe(204);
    expect((await callApi(sandbox, 'percentage')).envelope.message).toBe('unauthorized client');
    expect((await control('POST', 'unauthorized', { on: false })).status).toBe(204);
    expect((await callApi(sandbox, 'percentage')).status).toBe(400);
    expect((await control('POST', 'unauthorized', { on: 'yes' })).status).toBe(400);
  });

  it('lists stored objects and requests', async () => {
    await put(await uploadUrl(sandbox, 's1'), bytes(777));
    const objects = JSON.parse((await control('GET', 'objects')).text) as unknown;
    expect(objects).toEqual(sandbox.objects());
    expect(objects).toMatchObject([{ sessionId: 's1', size: 777, sha256: sha256Hex(bytes(777)) }]);
    const requests = JSON.parse((await control('GET', 'requests')).text) as unknown;
    expect(requests).toEqual([
      { endpoint: 'multi-upload', sessionId: 's1', status: 200 },
      { endpoint: 'put', sessionId: 's1', status: 200 },
    ]);
  });

  it('answers 404 for an unknown control route', async () => {
    expect((await control('GET', 'nothing')).status).toBe(404);
  });
});

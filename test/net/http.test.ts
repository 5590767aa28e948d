import { describe, expect, it } from 'vitest';
import { describeNetworkFailure } from '../../src/net/http.js';

const failure = (code: string) => Object.assign(new Error(`failed with ${code}`), { code });

describe('describeNetworkFailure', () => {
  it('takes socket, DNS, TLS and undici errors for the network, worth retrying', () => {
    for (const code of ['ECONNRESET', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT']) {
      expect(describeNetworkFailure(failure(code)), code).toBe(`${code}: failed with ${code}`);
    }
  });

  it('leaves Node\'s own ERR_ codes and undici\'s caller mistakes alone: they name a bug, and retrying would loop forever', () => {
    for (const code of ['ERR_INVALID_ARG_TYPE', 'ERR_MODULE_NOT_FOUND', 'ERR_HTTP_HEADERS_SENT', 'UND_ERR_INVALID_ARG']) {
      expect(describeNetworkFailure(failure(code)), code).toBeUndefined();
    }
    expect(describeNetworkFailure(new Error('no code'))).toBeUndefined();
  });
});

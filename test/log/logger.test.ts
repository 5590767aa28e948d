import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, scrubSecrets } from '../../src/log/logger.js';

const signedUrl =
  'https://storage.googleapis.com/bucket/uploads/f/mix.wav?X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Credential=a%2Fb&X-Goog-Date=20261126T010000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=content-type%3Bhost&X-Goog-Signature=deadbeef';

function capture(format: 'json' | 'pretty') {
  const destination = new PassThrough();
  let text = '';
  destination.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const logger = createLogger({ level: 'info', format, secrets: ['sk_SECRET_1234'], destination });
  return { logger, text: () => text };
}

describe('log redaction', () => {
  it('removes signed query strings but keeps the path, so a log still says which file', () => {
    expect(scrubSecrets(`PUT ${signedUrl} failed`, [])).toBe('PUT https://storage.googleapis.com/bucket/uploads/f/mix.wav?<redacted> failed');
  });

  it('scrubs a secret with quotes or backslashes in it as JSON escapes it too', async () => {
    const destination = new PassThrough();
    let text = '';
    destination.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const token = 'tok"en\\with-escapes';
    createLogger({ level: 'info', format: 'json', secrets: [token], destination }).info({ header: `Bearer ${token}` }, 'seen');
    await new Promise((resolve) => setImmediate(resolve));
    expect(text).toContain('Bearer <redacted>');
    expect(text).not.toContain('with-escapes');
  });

  it('leaves ordinary URLs alone', () => {
    expect(scrubSecrets('see https://platform.cryo-mix.com/api/percentage?x=1', [])).toContain('?x=1');
  });

  it.each(['json', 'pretty'] as const)('scrubs the key and signatures from every field, message and error (%s)', async (format) => {
    const { logger, text } = capture(format);
    const error = new Error(`request to ${signedUrl} with key sk_SECRET_1234 failed`);
    logger.info({ url: signedUrl, nested: { apiKey: 'sk_SECRET_1234' }, err: error }, `uploading to ${signedUrl}`);
    await new Promise((resolve) => setImmediate(resolve));
    expect(text()).toContain('mix.wav');
    expect(text()).not.toContain('sk_SECRET_1234');
    expect(text()).not.toContain('X-Goog-Signature');
    expect(text()).not.toContain('deadbeef');
  });
});

import { describe, expect, it } from 'vitest';
import { UnsafeUrlError } from '../../src/cryomix/errors.js';
import { redactUrl } from '../../src/net/redact.js';
import { signedUrlLifetimeSeconds, validateSignedUrl } from '../../src/cryomix/signedUrl.js';

const GOOGLE = ['https://storage.googleapis.com'];
const SIGNED_QUERY =
  'X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=svc%40p.iam.gserviceaccount.com%2F20240501%2Fauto%2Fstorage%2Fgoog4_request' +
  '&X-Goog-Date=20240501T120000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=content-type%3Bhost&X-Goog-Signature=deadbeefcafe0123';

describe('validateSignedUrl', () => {
  it.each([
    ['a Google https URL', 'https://storage.googleapis.com/bucket/uploads/f/mix.wav?' + SIGNED_QUERY, GOOGLE],
    ['the explicit default port', 'https://storage.googleapis.com:443/bucket/mix.wav', GOOGLE],
    ['http on 127.0.0.1 when allowed', 'http://127.0.0.1:9000/bucket/mix.wav?sig=1', ['http://127.0.0.1:9000']],
    ['http on localhost when allowed', 'http://localhost:9000/b/mix.wav', ['http://localhost:9000/']],
    ['http on [::1] when allowed', 'http://[::1]:9000/b/mix.wav', ['http://[::1]:9000']],
    ['a path under an allowed bucket', 'https://storage.googleapis.com/my-bucket/uploads/x.wav', ['https://storage.googleapis.com/my-bucket']],
    ['one of several origins', 'https://b.example.com/x.wav', ['https://a.example.com', 'https://b.example.com']],
  ])('accepts %s', (_name, raw, origins) => {
    expect(validateSignedUrl(raw, origins).href).toBe(new URL(raw).href);
  });

  it.each([
    ['a non-string', 42, GOOGLE],
    ['garbage', 'not a url', GOOGLE],
    ['http to a remote host', 'http://storage.googleapis.com/bucket/mix.wav', ['http://storage.googleapis.com']],
    ['http to loopback not in uploadOrigins', 'http://127.0.0.1:9000/b/mix.wav', GOOGLE],
    ['userinfo', 'https://user:pass@storage.googleapis.com/bucket/mix.wav', GOOGLE],
    ['a username alone', 'https://storage.googleapis.com@evil.example/bucket/mix.wav', GOOGLE],
    ['a look-alike host', 'https://storage.googleapis.com.evil.com/bucket/mix.wav', GOOGLE],
    ['another host', 'https://evil.example/bucket/mix.wav', GOOGLE],
    ['another port', 'https://storage.googleapis.com:8443/bucket/mix.wav', GOOGLE],
    ['another scheme', 'ftp://storage.googleapis.com/bucket/mix.wav', GOOGLE],
    ['a sibling path', 'https://storage.googleapis.com/my-bucket-evil/x.wav', ['https://storage.googleapis.com/my-bucket']],
    ['a dot-dot escape', 'https://storage.googleapis.com/my-bucket/../other/x.wav', ['https://storage.googleapis.com/my-bucket']],
    ['http loopback on another port', 'http://127.0.0.1:9001/b/mix.wav', ['http://127.0.0.1:9000']],
  ])('refuses %s', (_name, raw, origins) => {
    expect(() => validateSignedUrl(raw, origins)).toThrow(UnsafeUrlError);
  });

  it('never quotes the signature in its refusal', () => {
    const raw = 'https://evil.example/bucket/mix.wav?' + SIGNED_QUERY;
    const error = catchError(() => validateSignedUrl(raw, GOOGLE));
    expect(error).toBeInstanceOf(UnsafeUrlError);
    expect(error.message).toContain('https://evil.example/bucket/mix.wav?<redacted>');
    expect(error.message).not.toContain('deadbeef');
  });
});

describe('signedUrlLifetimeSeconds', () => {
  it('reads X-Goog-Expires, in any case, and ignores X-Goog-Date (the API\'s clock, not ours)', () => {
    expect(signedUrlLifetimeSeconds(new URL('https://storage.googleapis.com/b/x.wav?' + SIGNED_QUERY))).toBe(900);
    expect(signedUrlLifetimeSeconds(new URL('https://s.example/b?x-goog-date=19700101T000000Z&x-goog-expires=1'))).toBe(1);
    expect(signedUrlLifetimeSeconds(new URL('https://s.example/b?X-Goog-Expires=604800'))).toBe(604_800);
  });

  it.each([
    ['no parameters', ''],
    ['no expiry', '?X-Goog-Date=20240501T120000Z'],
    ['a negative expiry', '?X-Goog-Date=20240501T120000Z&X-Goog-Expires=-5'],
    ['a fractional expiry', '?X-Goog-Date=20240501T120000Z&X-Goog-Expires=1.5'],
    ['an absurd expiry', '?X-Goog-Expires=123456789'],
  ])('is null with %s', (_name, query) => {
    expect(signedUrlLifetimeSeconds(new URL('https://s.example/b/x.wav' + query))).toBeNull();
  });
});

describe('redactUrl', () => {
  it('keeps origin and path, hides the query', () => {
    const raw = 'https://storage.googleapis.com/bucket/uploads/f/mix.wav?' + SIGNED_QUERY;
    expect(redactUrl(raw)).toBe('https://storage.googleapis.com/bucket/uploads/f/mix.wav?<redacted>');
    expect(redactUrl(new URL(raw))).not.toMatch(/X-Goog-Signature|deadbeef|Credential/);
  });

  it('leaves a URL without a query as it is', () => {
    expect(redactUrl('https://platform.cryo-mix.com/api/percentage')).toBe('https://platform.cryo-mix.com/api/percentage');
  });

  it('drops userinfo and fragments', () => {
    expect(redactUrl('https://user:secret@host.example/p#token=abc')).toBe('https://host.example/p');
  });

  it('does not echo something that is not a URL', () => {
    expect(redactUrl('secret?X-Goog-Signature=abc')).toBe('<unparseable URL>');
  });
});

function catchError(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

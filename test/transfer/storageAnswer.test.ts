import { describe, expect, it } from 'vitest';
import { md5FromGoogHash, parseStorageError } from '../../src/transfer/storageAnswer.js';

describe('parseStorageError', () => {
  it('reads Code and Message from Google XML', () => {
    const xml =
      "<?xml version='1.0' encoding='UTF-8'?><Error><Code>SignatureDoesNotMatch</Code>" +
      '<Message>Access denied.</Message><Details>The request signature we calculated does not match &amp; so on</Details>' +
      '<StringToSign>GOOG4-RSA-SHA256\n20240501T120000Z</StringToSign></Error>';
    expect(parseStorageError(xml)).toEqual({ code: 'SignatureDoesNotMatch', message: 'Access denied.' });
  });

  it('decodes entities and folds whitespace', () => {
    const xml = '<Error><Code>ExpiredToken</Code><Message>\n  Invalid argument &lt;x&gt; &#39;y&#x27;\n</Message></Error>';
    expect(parseStorageError(xml)).toEqual({ code: 'ExpiredToken', message: "Invalid argument <x> 'y'" });
  });

  it('yields nothing from a body that is not storage XML', () => {
    expect(parseStorageError('<html>Bad gateway</html>')).toEqual({ code: undefined, message: undefined });
    expect(parseStorageError('')).toEqual({ code: undefined, message: undefined });
  });
});

describe('md5FromGoogHash', () => {
  it('finds md5 in one comma-separated header', () => {
    expect(md5FromGoogHash('crc32c=n03x6A==, md5=Ojk9c3dhfxgoKVVHYwFbHQ==')).toBe('Ojk9c3dhfxgoKVVHYwFbHQ==');
  });

  it('finds md5 among several headers', () => {
    expect(md5FromGoogHash(['crc32c=n03x6A==', 'md5=Ojk9c3dhfxgoKVVHYwFbHQ=='])).toBe('Ojk9c3dhfxgoKVVHYwFbHQ==');
  });

  it('is undefined when storage sent no md5 (composite objects)', () => {
    expect(md5FromGoogHash('crc32c=n03x6A==')).toBeUndefined();
    expect(md5FromGoogHash(undefined)).toBeUndefined();
  });
});

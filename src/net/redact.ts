const MAX_REDACTED_LENGTH = 300;

/**
 * The only form in which a URL may reach a log line or an error message: the
 * query string of a signed URL is a bearer credential (SPEC guarantee 7), and
 * userinfo or a fragment may be too, so both are dropped.
 */
export function redactUrl(url: URL | string): string {
  const parsed = typeof url === 'string' ? parseUrl(url) : url;
  if (parsed === undefined) return '<unparseable URL>';
  const visible = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  const clipped = visible.length > MAX_REDACTED_LENGTH ? `${visible.slice(0, MAX_REDACTED_LENGTH)}…` : visible;
  return parsed.search === '' ? clipped : `${clipped}?<redacted>`;
}

export function parseUrl(raw: string): URL | undefined {
  return URL.canParse(raw) ? new URL(raw) : undefined;
}

/** Query strings of signed URLs carry the signature; everything after `?` goes. */
const SIGNED_QUERY = /(\/[^\s"?]*)\?[^\s"]*X-Goog-[^\s"]*/gi;

/** Redacts every signed URL inside free text (an error message, a log line), keeping the path that names the file. */
export function redactSignedUrls(text: string): string {
  return text.replace(SIGNED_QUERY, '$1?<redacted>');
}

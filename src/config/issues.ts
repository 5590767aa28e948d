import { z } from 'zod';
import { ConfigError } from '../errors.js';

/**
 * Messages for the issues no field in `schema.ts` words itself. Like the
 * fields' own messages they state only the expectation; `toConfigError`
 * adds the value found.
 */
export const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return issue.origin === 'array' ? `expected at least ${String(issue.minimum)} item(s)` : undefined;
    case 'unrecognized_keys': {
      const known = issue.inst instanceof z.ZodObject ? Object.keys(issue.inst.shape) : [];
      const suggestion = closest(issue.keys[0] ?? '', known);
      return suggestion === undefined ? 'unknown key' : `unknown key (did you mean "${suggestion}"?)`;
    }
    default:
      return undefined;
  }
};

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

/** The one problem the user sees; parse with `{ error: errorMap, reportInput: true }`. */
export function toConfigError(error: z.ZodError): ConfigError {
  // A misspelt key usually also leaves a required key missing; naming the
  // typo points at the cause rather than the symptom.
  // A failed parse always carries at least one issue.
  const issue = error.issues.find((candidate) => candidate.code === 'unrecognized_keys') ?? error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    return new ConfigError(formatKeyPath([...issue.path, issue.keys[0] ?? '']), issue.message);
  }
  const keyPath = formatKeyPath(issue.path);
  if (!issue.message.startsWith('expected ')) return new ConfigError(keyPath, issue.message);
  if (issue.input === undefined) return new ConfigError(keyPath, `missing, ${issue.message}`);
  // A token is a secret even when it has the wrong type.
  const shown = issue.path.at(-1) === 'token' ? '(not shown: secret)' : show(issue.input);
  return new ConfigError(keyPath, `${issue.message}, got ${shown}`);
}

/** JavaScript notation, as a user would write it in a search: `folders[0].path`. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  return path
    .map((key, index) => {
      if (typeof key === 'number') return `[${key}]`;
      const name = String(key);
      if (!/^[A-Za-z_$][\w$]*$/.test(name)) return `[${JSON.stringify(name)}]`;
      return index === 0 ? name : `.${name}`;
    })
    .join('');
}

/** `scheme://user:password@`: the password of a URL is never repeated back, whichever key holds it. */
const URL_PASSWORD = /(\/\/[^/:@\s]*:)[^@/\s]*@/g;

function show(value: unknown): string {
  if (typeof value === 'string') {
    const safe = value.replace(URL_PASSWORD, '$1***@');
    return JSON.stringify(safe.length > 80 ? `${safe.slice(0, 77)}...` : safe);
  }
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (value !== null && typeof value === 'object') return 'a mapping';
  return String(value);
}

function closest(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

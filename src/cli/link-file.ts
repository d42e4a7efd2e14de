/**
 * `.breeze.json` (`breeze link`): pins a profile, server and project to a directory tree. The file
 * sits in a repository others write to, so its content is untrusted: only the three known fields are
 * taken, each checked for its shape; unknown fields are ignored with a warning (a newer breeze may
 * add fields; refusing them would break every command in that tree for older versions), and a field
 * that looks like a secret is never read. On the fast path (`breeze token`): node:fs and node:path only.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UsageError } from './errors.js';

export const LINK_FILE = '.breeze.json';
/** Larger than any honest `{"profile","server","project"}`: a bigger file is not read. */
const MAX_BYTES = 8192;
const LINK_FIELDS = ['profile', 'server', 'project'] as const;

export interface LinkFile {
  /** absolute path of the `.breeze.json` that applies */
  path: string;
  profile?: string;
  server?: string;
  project?: string;
}

/** Profile names as config.json keys allow them (see context.ts). */
export function isProfileName(value: string): boolean {
  return /^[A-Za-z0-9._-]{1,64}$/.test(value) && !(value in Object.prototype);
}

/** A project id (`proj_…`) or name: printable, no control characters, at most 100 characters. */
export function isProjectRef(value: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  return value.trim().length > 0 && value.length <= 100 && !/[\u0000-\u001f\u007f-\u009f]/.test(value);
}

function invalid(path: string, what: string): never {
  throw new UsageError(`${path} is not a valid Breeze link file: ${what}.`, {
    hint: `It may hold only {"profile", "server", "project"} (strings). Fix it, or remove it with "breeze unlink" in ${dirname(path)}.`,
  });
}

/**
 * Parses the text of a link file. Throws a usage error naming the file for a malformed one; calls
 * `warn` once for ignored fields. The server is returned as written (context.ts normalises it).
 */
export function parseLinkFile(path: string, text: string, warn: (m: string) => void): LinkFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    invalid(path, 'it is not JSON');
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) invalid(path, 'it is not a JSON object');
  const record = data as Record<string, unknown>;
  const link: LinkFile = { path };
  for (const field of LINK_FIELDS) {
    const value = record[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') invalid(path, `"${field}" is not a string`);
    if (field === 'profile' && !isProfileName(value))
      invalid(path, '"profile" is not a profile name (letters, digits, ".", "_", "-")');
    if (field === 'project' && !isProjectRef(value)) invalid(path, '"project" is not a project id or name');
    if (field === 'server' && (value.length > 2048 || !/^(embedded|https?:\/\/\S+)$/.test(value)))
      invalid(path, '"server" is not an http(s) URL or "embedded"');
    link[field] = value;
  }
  const unknown = Object.keys(record).filter((k) => !(LINK_FIELDS as readonly string[]).includes(k));
  if (unknown.length) {
    // names only, escaped by the output; values are never echoed (one may be a pasted secret)
    const names = unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 40)));
    warn(
      `Warning: ${path}: ignoring unknown field(s) ${names.join(', ')}${unknown.length > 5 ? ', …' : ''}. A link file holds only profile, server and project, never a secret.`,
    );
  }
  return link;
}

/** The nearest `.breeze.json` from `cwd` up to the root, parsed; undefined when there is none. */
export function findLinkFile(cwd: string, warn: (m: string) => void): LinkFile | undefined {
  let dir = cwd;
  for (;;) {
    const path = join(dir, LINK_FILE);
    if (existsSync(path)) {
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(path);
      } catch {
        return undefined;
      }
      if (!st.isFile()) invalid(path, 'it is not a regular file');
      if (st.size > MAX_BYTES) invalid(path, `it is larger than ${MAX_BYTES} bytes`);
      return parseLinkFile(path, readFileSync(path, 'utf8'), warn);
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

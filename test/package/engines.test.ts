import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

/**
 * The Node versions to check every dependency against: the oldest the README promises
 * (`engines.node` of package.json) and the one running this test.
 */
function promisedVersions(): string[] {
  const floor = semver.minVersion(pkg.engines.node)?.version;
  if (!floor) throw new Error(`package.json engines.node "${pkg.engines.node}" has no minimum`);
  return [...new Set([floor, process.versions.node])];
}

/** Every installed package whose `engines.node` refuses `version` (what `npm ci` prints as EBADENGINE). */
function engineMismatches(version: string): string[] {
  const bad: string[] = [];
  for (const [path, meta] of Object.entries(lock.packages)) {
    // old-style array `engines` are ignored by npm
    const range = meta.engines && !Array.isArray(meta.engines) ? meta.engines.node : undefined;
    if (!range) continue;
    if (!semver.satisfies(version, range, { includePrerelease: true })) {
      bad.push(`${path || '(root)'}@${meta.version ?? '?'} wants node ${range}`);
    }
  }
  return bad;
}

describe('Node engines of the installed dependencies', () => {
  it('the lock file holds entries to check', () => {
    expect(Object.keys(lock.packages).length).toBeGreaterThan(100);
    expect(promisedVersions()[0]).toBe('20.19.0');
  });

  for (const version of promisedVersions()) {
    it(`every package in package-lock.json accepts Node ${version} (no EBADENGINE on npm ci)`, () => {
      expect(engineMismatches(version)).toEqual([]);
    });
  }
});

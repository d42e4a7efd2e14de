/**
 * @breeze/verify stays installable on its own: no native dependency, nothing imported from the CLI
 * or the server, and `npm pack` of the root still ships only the CLI while the workspace's pack
 * holds the SDK's dist and README.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const pkgDir = join(root, 'packages', 'verify');
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
  name: string;
  type: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  engines: { node: string };
  exports: Record<string, unknown>;
};
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dependencies?: Record<string, string>; link?: boolean; resolved?: string }>;
};

function packFiles(args: string[]): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return (JSON.parse(out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
}

describe('@breeze/verify as a package', () => {
  it('depends on jose only (fastify an optional peer), ESM with types, Node >= 20.19', () => {
    expect(pkg.name).toBe('@breeze/verify');
    expect(pkg.type).toBe('module');
    expect(Object.keys(pkg.dependencies ?? {})).toEqual(['jose']);
    for (const peer of Object.keys(pkg.peerDependencies ?? {})) {
      expect(pkg.peerDependenciesMeta?.[peer]?.optional, peer).toBe(true);
    }
    expect(pkg.engines.node).toBe('>=20.19');
    expect(pkg.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(lock.packages['node_modules/@breeze/verify']).toMatchObject({
      link: true,
      resolved: 'packages/verify',
    });
    expect(Object.keys(lock.packages['packages/verify']?.dependencies ?? {})).toEqual(['jose']);
  });

  it('imports nothing from the CLI or the server, and no package but jose and (types of) fastify', () => {
    const src = join(pkgDir, 'src');
    const seen = new Set<string>();
    for (const file of readdirSync(src)) {
      const text = readFileSync(join(src, file), 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
        const spec = m[1]!;
        seen.add(spec);
        if (spec.startsWith('.')) {
          expect(spec, `${file} imports ${spec}`).toMatch(/^\.\/[a-z-]+\.js$/);
        } else if (!spec.startsWith('node:')) {
          expect(['jose', 'fastify'], `${file} imports ${spec}`).toContain(spec);
        }
      }
      // fastify only as types: a service using the Express guard does not need it installed
      expect(text).not.toMatch(/^import (?!type )[^;]*from 'fastify'/m);
    }
    expect(seen.has('jose')).toBe(true);
  });

  it('npm pack: the root ships the CLI only, the workspace its dist and README', { timeout: 90_000 }, () => {
    const rootFiles = packFiles([]);
    expect(rootFiles).toContain('bin/breeze.js');
    expect(rootFiles.filter((f) => f.startsWith('packages/') || f.startsWith('examples/'))).toEqual([]);
    const sdkFiles = packFiles(['-w', '@breeze/verify']);
    expect(sdkFiles).toContain('README.md');
    expect(sdkFiles).toContain('package.json');
    expect(sdkFiles).toContain('dist/index.js');
    expect(sdkFiles).toContain('dist/index.d.ts');
    expect(sdkFiles).toContain('dist/fastify.d.ts');
    expect(
      sdkFiles.filter((f) => !f.startsWith('dist/') && f !== 'README.md' && f !== 'package.json'),
    ).toEqual([]);
  });
});

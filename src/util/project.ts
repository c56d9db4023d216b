/**
 * Where pbxsync itself is installed: the folder of its package.json, found from this module, which runs from
 * src/ (under tsx) or from dist/src/ (built) alike.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What pbxsync's own package.json holds that the code reads. */
export interface ProjectPackage {
  name: string;
  version?: string;
  bin?: string | Record<string, string>;
}

let found: { root: string; pkg: ProjectPackage } | undefined;

/** The nearest folder above this module whose package.json is pbxsync's, with that package.json. */
export function project(): { root: string; pkg: ProjectPackage } {
  if (found) return found;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as ProjectPackage;
      if (pkg.name === 'pbxsync') return (found = { root: dir, pkg });
    }
    dir = path.dirname(dir);
  }
  throw new Error(`pbxsync's package.json not found above ${fileURLToPath(import.meta.url)}`);
}

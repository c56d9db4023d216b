/**
 * Build step (`npm run build`, after tsc): makes the package's `bin` entries executable. tsc writes every file
 * 0644, and `npx pbxsync` in a checkout runs `dist/src/cli/main.js` through its `#!` line, which the kernel
 * refuses without the execute bits ("Permission denied"); an installed package gets them from npm, a checkout
 * does not. Run as a script: `node dist/src/build/bin.js`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { project } from '../util/project.js';

/** The files package.json names in `bin`, absolute. */
export async function binFiles(root: string = project().root): Promise<string[]> {
  const pkg = JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as { name: string; bin?: string | Record<string, string> };
  const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {});
  return bins.map((b) => path.resolve(root, b));
}

/** Adds the execute bits (for whoever may read the file) to every bin file; returns them. */
export async function makeBinsExecutable(root: string = project().root): Promise<string[]> {
  const files = await binFiles(root);
  for (const file of files) {
    const { mode } = await fs.stat(file);
    // r → x for owner, group and others alike: 0644 becomes 0755, 0640 becomes 0750.
    await fs.chmod(file, mode | ((mode & 0o444) >> 2));
  }
  return files;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const files = await makeBinsExecutable();
  process.stdout.write(`executable: ${files.map((f) => path.relative(process.cwd(), f)).join(', ')}\n`);
}

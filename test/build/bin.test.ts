import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binFiles, makeBinsExecutable } from '../../src/build/bin.js';
import { project } from '../../src/util/project.js';

const PROJECT_ROOT = project().root;

test('the build leaves every bin of package.json executable, and `npx pbxsync` runs in the checkout (as the README says)', async (t) => {
  const files = await binFiles();
  t.deepEqual(files, [path.join(PROJECT_ROOT, 'dist/src/cli/main.js')]);
  for (const file of files) await t.notThrowsAsync(fs.access(file, constants.X_OK), `${file} is executable`);
  const run = spawnSync('npx', ['--no-install', 'pbxsync', '--help'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /^Usage: pbxsync /m);
});

test('makeBinsExecutable adds the execute bit wherever the file is readable', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'pbxsync-bin-'));
  await fs.mkdir(path.join(root, 'bin'));
  await fs.writeFile(path.join(root, 'package.json'), JSON.stringify({ name: 'x', bin: { a: 'bin/a.js', b: 'bin/b.js' } }));
  await fs.writeFile(path.join(root, 'bin/a.js'), '#!/usr/bin/env node\n', { mode: 0o644 });
  await fs.writeFile(path.join(root, 'bin/b.js'), '#!/usr/bin/env node\n', { mode: 0o640 });
  await fs.chmod(path.join(root, 'bin/a.js'), 0o644);
  await fs.chmod(path.join(root, 'bin/b.js'), 0o640);
  await makeBinsExecutable(root);
  t.is((await fs.stat(path.join(root, 'bin/a.js'))).mode & 0o777, 0o755);
  t.is((await fs.stat(path.join(root, 'bin/b.js'))).mode & 0o777, 0o750);
});

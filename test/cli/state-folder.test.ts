import test from 'ava';
import fs from 'node:fs/promises';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

test('a state folder that is a file: import, status, export, plan, explain and run each say which folder and what to fix (exit 1), not a bare EEXIST', async (t) => {
  const ws = await makeWorkspace();
  // stateDir (data) is an ordinary file.
  await fs.writeFile(ws.stateDir, 'not a folder');
  const file = await ws.write('one.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]));
  const message = `state folder ${ws.stateDir} is not a folder (it is a file): point stateDir in the configuration at a folder, or move ${ws.stateDir} out of the way`;
  for (const args of [['import', file], ['status'], ['export'], ['plan'], ['explain', '1001'], ['run']]) {
    const r = await ws.cli(args);
    t.is(r.code, 1, `${args[0]}: ${r.stdout}${r.stderr}`);
    t.true(r.stderr.startsWith(`pbxsync: ${message}`), `${args[0]}: ${r.stderr}`);
  }
  const json = await ws.cli(['status', '--json']);
  t.is(json.code, 1);
  t.true((JSON.parse(json.stdout) as { error: string }).error.startsWith(message), json.stdout);
  t.is(await fs.readFile(ws.stateDir, 'utf8'), 'not a folder', 'the file is left alone');
});

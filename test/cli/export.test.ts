import test from 'ava';
import { makeWorkspace, person, threeCxCsv } from '../helpers/workspace.js';

test('export --json is JSON (--format json) unless --format says otherwise', async (t) => {
  const ws = await makeWorkspace();
  t.is((await ws.cli(['import', await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]))])).code, 0);
  const json = await ws.cli(['export', '--json']);
  t.is(json.code, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), JSON.parse((await ws.cli(['export', '--format', 'json'])).stdout));
  t.is((JSON.parse(json.stdout) as Array<{ extension: string }>)[0]!.extension, '1001');

  const csv = await ws.cli(['--json', 'export', '--format', 'csv']);
  t.is(csv.code, 0, csv.stderr);
  t.regex(csv.stdout, /^Number,FirstName,LastName,/);
  t.is((await ws.cli(['export'])).stdout, csv.stdout, 'csv without --json');

  const bad = await ws.cli(['export', '--json', '--format', 'xml']);
  t.is(bad.code, 2);
  t.deepEqual(JSON.parse(bad.stdout), { error: '--format must be csv or json, not xml' });
});

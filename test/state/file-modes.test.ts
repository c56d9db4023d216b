import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { makeWorkspace, person, staff, threeCxCsv } from '../helpers/workspace.js';

async function modeOf(file: string): Promise<string> {
  return `0${((await fs.stat(file)).mode & 0o777).toString(8)}`;
}

test('state files that hold credentials or name every user are created readable by their owner only', async (t) => {
  const ws = await makeWorkspace({ mode: 'snapshot' });
  // The input is world-readable, as a file dropped by an admin often is; its copy beside a held plan is not.
  const first = await ws.write('all.csv', threeCxCsv(staff(20).map((r) => ({ ...r, VMPIN: '4711' }))));
  await fs.chmod(first, 0o644);
  t.is((await ws.cli(['import', first])).code, 0);
  // A second commit appends to the journal instead of writing the document.
  const more = await ws.write('more.csv', threeCxCsv([...staff(20), person(1500, 'Extra', 'One')]));
  t.is((await ws.cli(['import', more])).code, 0);
  const half = await ws.write('half.csv', threeCxCsv(staff(10)));
  await fs.chmod(half, 0o644);
  t.is((await ws.cli(['import', half])).code, 3, 'held');

  t.is(await modeOf(path.join(ws.stateDir, 'pbx.json')), '0600');
  const journal = path.join(ws.stateDir, 'pbx.json.journal');
  t.true((await fs.stat(journal)).size > 0, 'the second import appended to the journal');
  t.is(await modeOf(journal), '0600');
  const plans = await fs.readdir(path.join(ws.stateDir, 'plans'));
  t.true(plans.some((f) => f.endsWith('.json')) && plans.some((f) => f.endsWith('.csv')), plans.join(', '));
  for (const f of plans) t.is(await modeOf(path.join(ws.stateDir, 'plans', f)), '0600', f);
  const outbox = path.join(ws.stateDir, 'outbox');
  const mails = (await fs.readdir(outbox)).filter((f) => f.endsWith('.eml'));
  t.is(mails.length, 21);
  for (const f of mails) t.is(await modeOf(path.join(outbox, f)), '0600', f);
});

test('a PBX store document or journal readable by others (an older version, a restored backup) is narrowed to 0600 when opened', async (t) => {
  const ws = await makeWorkspace();
  t.is((await ws.cli(['import', await ws.write('a.csv', threeCxCsv([person(1001, 'Anna', 'Smith')]))])).code, 0);
  t.is((await ws.cli(['import', await ws.write('b.csv', threeCxCsv([person(1002, 'Bob', 'Stone')]))])).code, 0);
  const doc = path.join(ws.stateDir, 'pbx.json');
  const journal = path.join(ws.stateDir, 'pbx.json.journal');
  await fs.chmod(doc, 0o644);
  await fs.chmod(journal, 0o664);

  const run = await ws.cli(['import', await ws.write('c.csv', threeCxCsv([person(1003, 'Cleo', 'Rae')]))]);
  t.is(run.code, 0, run.stderr);
  t.is(await modeOf(doc), '0600');
  t.is(await modeOf(journal), '0600');
  t.regex(run.stderr, /readable by others; made it readable by its owner only/);
});

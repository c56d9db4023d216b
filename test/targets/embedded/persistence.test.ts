import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LockedError, TerminalError } from '../../../src/errors/index.js';
import { collect, openTarget, tempDir, userInput } from './helpers.js';

test('a commit persists; reopening the file gives the same users and departments', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  await target.ensureDepartments(['Sales']);
  const a = await target.createUser(userInput({ extension: '1001', email: 'a@x.com', department: 'Sales', dids: ['+4930111'] }));
  await target.createUser(userInput({ extension: '1002', phones: [{ mac: '001565aabbcc', model: 'T46U' }] }));
  await target.updateUser(a.id, { lastName: 'Stone' });
  await target.commit();
  const before = await collect(target.listUsers());
  await target.close();

  const again = await openTarget(t, dir);
  t.deepEqual(await collect(again.listUsers()), before);
  t.deepEqual(await again.listDepartments(), ['DEFAULT', 'Sales']);
  // The claims are indexed again after loading.
  await t.throwsAsync(again.createUser(userInput({ extension: '1003', dids: ['+4930111'] })), { message: /DID \+4930111 is already used by extension 1001/ });
  const doc = JSON.parse(await fs.readFile(path.join(dir, 'pbx.json'), 'utf8'));
  t.is(doc.version, 1);
  t.regex(doc.installId, /^[0-9a-f-]{36}$/);
  t.deepEqual(Object.keys(doc), ['version', 'installId', 'seq', 'departments', 'users']);
});

/** What a crash can leave after the last complete commit: `journal` is the complete commits' text. */
const TORN_TAILS: Array<[string, (journal: string) => string]> = [
  ['half a head line', () => '{"seq":3,"upsert":['],
  ['a head line and half a user', () => '{"seq":3,"upsert":[\n{"id":"x"'],
  // A user line as a real commit writes it, so only the missing tail line makes the commit torn.
  ['user lines without the tail line', (journal) => `{"seq":3,"upsert":[\n${journal.split('\n')[1].replace(/,$/, '')},\n`],
  ['half a tail line', (journal) => `{"seq":3,"upsert":[\n${journal.split('\n')[1].replace(/,$/, '')}\n],"dele`],
];

for (const [what, tornTail] of TORN_TAILS) {
  test(`committed changes survive a crash (no close): the journal is replayed, a torn last commit dropped (${what})`, async (t) => {
    const dir = await tempDir(t);
    const target = await openTarget(t, dir);
    const a = await target.createUser(userInput({ extension: '1001' }));
    await target.commit(); // first commit writes the document
    await target.createUser(userInput({ extension: '1002' }));
    await target.updateUser(a.id, { lastName: 'Stone' });
    await target.commit(); // journalled
    const committed = await collect(target.listUsers());
    await target.deleteUsers([a.id]); // never committed
    // "Crash": copy the files as they are now, plus part of a commit that never returned.
    const crashed = path.join(dir, 'crashed');
    await fs.mkdir(crashed);
    await fs.copyFile(path.join(dir, 'pbx.json'), path.join(crashed, 'pbx.json'));
    const journal = await fs.readFile(path.join(dir, 'pbx.json.journal'), 'utf8');
    t.true(journal.length > 0);
    await fs.writeFile(path.join(crashed, 'pbx.json.journal'), journal + tornTail(journal));

    const recovered = await openTarget(t, crashed);
    t.deepEqual(await collect(recovered.listUsers()), committed);
    // The torn tail is cut off, so the next commit appends cleanly.
    t.is(await fs.readFile(path.join(crashed, 'pbx.json.journal'), 'utf8'), journal);
    await recovered.createUser(userInput({ extension: '1003' }));
    await recovered.close();
    const third = await openTarget(t, crashed);
    t.deepEqual((await collect(third.listUsers())).map((u) => u.extension), ['1001', '1002', '1003']);
  });
}

test('a journal commit is one JSON text with a user per line; single-line commits of earlier versions still replay', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  const a = await target.createUser(userInput({ extension: '1001' }));
  await target.commit(); // the document
  await target.createUser(userInput({ extension: '1002' }));
  await target.createUser(userInput({ extension: '1003' }));
  await target.deleteUsers([a.id]);
  await target.commit();
  const listed = await collect(target.listUsers());
  await target.close();
  const file = path.join(dir, 'pbx.json.journal');
  const text = await fs.readFile(file, 'utf8');
  const lines = text.split('\n');
  t.is(lines.length, 5, text);
  t.regex(lines[0], /^\{"seq":\d+,"upsert":\[$/);
  t.deepEqual(lines.slice(1, 3).map((l) => JSON.parse(l.replace(/,$/, '')).extension), ['1002', '1003']);
  t.is(lines[3], `],"delete":${JSON.stringify([a.id])}}`);
  const entry = JSON.parse(text);
  t.deepEqual(entry.upsert.map((u: { extension: string }) => u.extension), ['1002', '1003']);
  t.deepEqual(entry.delete, [a.id]);

  // The same commit as earlier versions wrote it: one line.
  await fs.writeFile(file, JSON.stringify(entry) + '\n');
  const again = await openTarget(t, dir);
  t.deepEqual(await collect(again.listUsers()), listed);
  t.deepEqual(listed.map((u) => u.extension), ['1002', '1003']);
});

test('a damaged line inside a journal commit is refused with the file and line named', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  await target.createUser(userInput({ extension: '1001' }));
  await target.commit();
  await target.createUser(userInput({ extension: '1002' }));
  await target.commit();
  await target.close();
  const file = path.join(dir, 'pbx.json.journal');
  const lines = (await fs.readFile(file, 'utf8')).split('\n');
  lines[1] = lines[1].slice(0, 20);
  await fs.writeFile(file, lines.join('\n'));
  await t.throwsAsync(openTarget(t, dir), { instanceOf: TerminalError, message: /pbx\.json\.journal: line 2 is not valid JSON; the journal is damaged/ });
});

test('close leaves the journal: the document and the journal together are the store', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'pbx.json');
  const journal = path.join(dir, 'pbx.json.journal');
  const target = await openTarget(t, dir, { compactMinBytes: 1 });
  await target.createUser(userInput({ extension: '1001' }));
  await target.commit(); // the first commit writes the document
  const document = await fs.stat(file);
  let journalled = 0;
  for (let i = 2; i <= 20; i++) {
    await target.createUser(userInput({ extension: String(1000 + i) }));
    await target.commit();
    const size = (await fs.stat(journal)).size;
    t.true(size > journalled, `commit ${i} appended to the journal`);
    journalled = size;
  }
  t.is(target.writeCount(), 20);
  const listed = await collect(target.listUsers());
  await target.close();
  // New users are all live data: nothing was rewritten, during the run or at close.
  t.is((await fs.stat(file)).ino, document.ino, 'the document was not rewritten');
  t.is((await fs.stat(file)).mtimeMs, document.mtimeMs);
  t.is((await fs.stat(journal)).size, journalled, 'close leaves the journal as the last commit left it');
  t.deepEqual(JSON.parse(await fs.readFile(file, 'utf8')).users.map((u: { extension: string }) => u.extension), ['1001']);
  t.deepEqual((await fs.readdir(dir)).filter((f) => f.endsWith('.tmp')), []);

  const again = await openTarget(t, dir);
  t.deepEqual(await collect(again.listUsers()), listed);
  t.is(listed.length, 20);
});

test('changes are journalled until half of what a load reads is superseded; then the document is rewritten', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir, { compactMinBytes: 1 });
  const journal = path.join(dir, 'pbx.json.journal');
  const users = [];
  for (const extension of ['1001', '1002', '1003', '1004']) users.push(await target.createUser(userInput({ extension })));
  await target.commit(); // the document: 4 records for 4 users
  await target.updateUser(users[0].id, { lastName: 'One' });
  await target.commit(); // 5 records for 4 users: journalled
  await target.updateUser(users[1].id, { lastName: 'Two' });
  await target.updateUser(users[2].id, { lastName: 'Three' });
  await target.commit(); // 7 records for 4 users: journalled
  t.true((await fs.stat(journal)).size > 0);
  t.is(target.writeCount(), 3);
  await target.updateUser(users[3].id, { lastName: 'Four' });
  await target.commit(); // 8 records for 4 users: a new document instead, the journal emptied
  t.is((await fs.stat(journal)).size, 0);
  t.is(target.writeCount(), 4);
  const doc = JSON.parse(await fs.readFile(path.join(dir, 'pbx.json'), 'utf8'));
  t.deepEqual(doc.users.map((u: { lastName: string }) => u.lastName), ['One', 'Two', 'Three', 'Four']);
});

test('a read-only target reads a store another process holds and refuses writes', async (t) => {
  const dir = await tempDir(t);
  const owner = await openTarget(t, dir);
  await owner.createUser(userInput({ extension: '1001' }));
  await owner.commit();
  await owner.createUser(userInput({ extension: '1002' }));
  await owner.commit();
  const reader = await openTarget(t, dir, { readOnly: true });
  t.deepEqual((await collect(reader.listUsers())).map((u) => u.extension), ['1001', '1002']);
  await t.throwsAsync(reader.createUser(userInput({ extension: '1003' })), { instanceOf: TerminalError, message: /opened read-only/ });
  await reader.commit();
  t.is(reader.writeCount(), 0);
});

const holder = fileURLToPath(new URL('./hold-store.ts', import.meta.url));

function startHolder(file: string): Promise<import('node:child_process').ChildProcess> {
  const child = spawn(process.execPath, ['--import=tsx', holder, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
    child.stdout!.on('data', (data: Buffer) => {
      if (data.toString().includes('open')) resolve(child);
    });
  });
}

test('a second process cannot open the store while the first holds it; a killed owner stops blocking at once', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'pbx.json');
  const child = await startHolder(file);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const err = await t.throwsAsync(openTarget(t, dir, { lockStaleMs: 2000 }), { instanceOf: LockedError });
  t.true(err!.message.includes(file), err!.message);
  t.regex(err!.message, /in use by another pbxsync process/);

  // kill -9: no chance to release the lock, but the pid written into it is gone, so the next process takes
  // the lock over at once instead of waiting for it to turn stale.
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const target = await openTarget(t, dir, { lockStaleMs: 60_000 });
  await target.createUser(userInput());
  await target.commit();
  t.is(target.writeCount(), 1);
});

test('the lock is released on close, so the next process can open', async (t) => {
  const dir = await tempDir(t);
  const first = await openTarget(t, dir);
  await t.throwsAsync(openTarget(t, dir), { instanceOf: LockedError });
  await first.close();
  await t.notThrowsAsync(openTarget(t, dir));
});

test('a document that is not a store is refused with the file named', async (t) => {
  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'pbx.json'), JSON.stringify({ hello: 'world' }));
  await t.throwsAsync(openTarget(t, dir), { instanceOf: TerminalError, message: /pbx\.json is not a pbxsync store of version 1/ });
  // The failed open released its lock.
  await fs.writeFile(path.join(dir, 'pbx.json'), JSON.stringify({ version: 1, installId: 'i', seq: 0, departments: [], users: [] }));
  await t.notThrowsAsync(openTarget(t, dir));
});

test('the document has one user per line and is still one JSON document; an older single-line one is read, and journalled onto like any other', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  await target.ensureDepartments(['Sales']);
  for (const extension of ['1001', '1002', '1003']) await target.createUser(userInput({ extension, department: 'Sales' }));
  const listed = await collect(target.listUsers());
  await target.close();
  const file = path.join(dir, 'pbx.json');
  const text = await fs.readFile(file, 'utf8');
  const lines = text.split('\n');
  t.regex(lines[0], /^\{"version":1,"installId":"[^"]+","seq":\d+,"departments":\[.*\],"users":\[$/);
  t.deepEqual(lines.slice(1, 4).map((l) => JSON.parse(l.replace(/,$/, '')).extension), ['1001', '1002', '1003']);
  t.deepEqual(lines.slice(4), [']}', '']);
  const doc = JSON.parse(text);
  t.is(doc.users.length, 3);

  // The single-line layout earlier versions wrote (and hand-made, pretty-printed documents) still open.
  for (const older of [JSON.stringify(doc), JSON.stringify(doc, null, 2)]) {
    await fs.writeFile(file, older);
    const again = await openTarget(t, dir);
    t.deepEqual(await collect(again.listUsers()), listed);
    t.deepEqual(await again.listDepartments(), ['DEFAULT', 'Sales']);
    await again.createUser(userInput({ extension: '1004' }));
    await again.close();
    // The next compaction writes the line layout; until then the commit is a journal line on top of it.
    t.is(await fs.readFile(file, 'utf8'), older);
    t.regex(await fs.readFile(`${file}.journal`, 'utf8'), /"extension":"1004"/);
    const reopened = await openTarget(t, dir);
    t.deepEqual((await collect(reopened.listUsers())).map((u) => u.extension), ['1001', '1002', '1003', '1004']);
    await reopened.deleteUsers([(await collect(reopened.listUsers()))[3].id]);
    await reopened.close();
  }
});

test('a damaged document is refused with JSON.parse\'s error, in either layout', async (t) => {
  const dir = await tempDir(t);
  const target = await openTarget(t, dir);
  await target.createUser(userInput({ extension: '1001' }));
  await target.createUser(userInput({ extension: '1002' }));
  await target.close();
  const file = path.join(dir, 'pbx.json');
  const text = await fs.readFile(file, 'utf8');
  // A user line cut short.
  await fs.writeFile(file, text.replace(/"extension":"1001".*\n/, '"extension":"1001"\n'));
  await t.throwsAsync(openTarget(t, dir), { instanceOf: SyntaxError });
  // The document cut short after a complete user line.
  await fs.writeFile(file, text.slice(0, text.indexOf('\n', text.indexOf('"extension":"1001"')) + 1));
  await t.throwsAsync(openTarget(t, dir), { instanceOf: SyntaxError });
  await fs.writeFile(file, text);
  await t.notThrowsAsync(openTarget(t, dir));
});

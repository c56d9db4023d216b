import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import forge from 'node-forge';
import { Secret } from '../../../src/config/secret.js';
import { RetryableError, TerminalError } from '../../../src/errors/index.js';
import { createLogger } from '../../../src/log.js';
import { odataString } from '../../../src/targets/threecx/client.js';
import type { XapiUser } from '../../../src/targets/threecx/types.js';
import { apiCalls, clientFor, collect, startFake, tokenRequests } from './helpers.js';

test('one token for 20 concurrent first requests', async (t) => {
  const fake = await startFake({ latencyMs: 20 });
  t.teardown(() => fake.close());
  const client = clientFor(fake);
  t.teardown(() => client.close());
  const results = await Promise.all(Array.from({ length: 20 }, () => client.get<{ value: unknown[] }>('/Groups', { $select: 'Id,Name' })));
  t.true(results.every((r) => Array.isArray(r.value) && r.value.length >= 1));
  t.is(tokenRequests(fake), 1);
  t.is(fake.state.tokensIssued, 1);
  t.is(apiCalls(fake).length, 20);
  const form = fake.requests.find((r) => r.path === '/connect/token')!.body as Record<string, string>;
  t.is(form.client_id, fake.clientId);
  t.is(form.grant_type, 'client_credentials');
});

test('tokens revoked mid-run: one re-authentication serves all concurrent requests', async (t) => {
  const fake = await startFake({ latencyMs: 10 });
  t.teardown(() => fake.close());
  const client = clientFor(fake);
  t.teardown(() => client.close());
  await client.get('/Groups');
  fake.faults.revokeTokens();
  await Promise.all(Array.from({ length: 20 }, () => client.get('/Users', { $select: 'Id' })));
  t.is(tokenRequests(fake), 2, 'the revoked token was replaced exactly once');
  t.is(fake.requests.filter((r) => r.status === 401).length, 20, 'every request in flight saw the revocation once');
  await client.get('/Users', { $select: 'Id' });
  t.is(tokenRequests(fake), 2);
});

test('legacy expires_in (minutes) is read as minutes', async (t) => {
  const fake = await startFake({ legacyExpiresInMinutes: true });
  t.teardown(() => fake.close());
  const client = clientFor(fake);
  t.teardown(() => client.close());
  await client.get('/Groups');
  const token = fake.requests.find((r) => r.path === '/connect/token');
  t.truthy(token);
  const left = client.tokenRenewsAt()! - Date.now();
  // 60 read as seconds would renew within a minute; as minutes, the renewal is ~59 minutes away.
  t.true(left > 50 * 60_000, `token renews in ${left} ms`);
});

test('seconds expires_in above 120 is read as seconds', async (t) => {
  const fake = await startFake({ tokenLifetimeSeconds: 600 });
  t.teardown(() => fake.close());
  const client = clientFor(fake);
  t.teardown(() => client.close());
  await client.get('/Groups');
  const left = client.tokenRenewsAt()! - Date.now();
  t.true(left > 8 * 60_000 && left <= 600_000, `token renews in ${left} ms`);
});

test('a second 401 after re-authenticating is a TerminalError naming the API client', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake);
  t.teardown(() => client.close());
  fake.faults.nextResponses.push({ status: 401, path: '/Users', body: '' }, { status: 401, path: '/Users', body: '' });
  const err = await t.throwsAsync(client.get('/Users'), { instanceOf: TerminalError });
  t.is(err!.message, `3CX refused the API client ${fake.clientId}: check the client id/secret and that XAPI access is enabled`);
  t.is(tokenRequests(fake), 2, 're-authenticated once, not in a loop');
});

test('a wrong client secret is a TerminalError, never retried', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake, { clientSecret: new Secret('not-the-secret') });
  t.teardown(() => client.close());
  const err = await t.throwsAsync(client.get('/Users'), { instanceOf: TerminalError });
  t.regex(err!.message, /^3CX refused the API client 900: check the client id\/secret/);
  t.is(tokenRequests(fake), 1);
});

test('paging continues across a server page cap below $top', async (t) => {
  const fake = await startFake({ pageCap: 7 });
  t.teardown(() => fake.close());
  fake.seedUsers(23);
  const client = clientFor(fake);
  t.teardown(() => client.close());
  const users = await collect(client.list<XapiUser>('/Users', { select: 'Id,Number', orderby: 'Id', pageSize: 10 }));
  t.is(users.length, 23);
  t.is(new Set(users.map((u) => u.Id)).size, 23);
  const pages = fake.requests.filter((r) => r.path === '/xapi/v1/Users');
  t.deepEqual(pages.map((r) => r.query.$skip), ['0', '7', '14', '21']);
  t.is(pages[0]!.query.$count, 'true');
  t.false('$count' in pages[1]!.query);
});

test('paging stops on a short page without extra requests', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  fake.seedUsers(12);
  const client = clientFor(fake);
  t.teardown(() => client.close());
  const users = await collect(client.list<XapiUser>('/Users', { select: 'Id', pageSize: 5 }));
  t.is(users.length, 12);
  t.is(fake.requests.filter((r) => r.path === '/xapi/v1/Users').length, 3);
});

test("OData quoting: a filter on O'Brien finds exactly that user", async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  fake.seedUser({ FirstName: 'Pat', LastName: "O'Brien", EmailAddress: 'pat@example.test' });
  fake.seedUser({ FirstName: 'Pat', LastName: 'OBrien', EmailAddress: 'pat2@example.test' });
  const client = clientFor(fake);
  t.teardown(() => client.close());
  const users = await collect(client.list<XapiUser>('/Users', { select: 'Id,LastName', filter: `LastName eq ${odataString("O'Brien")}`, pageSize: 10 }));
  t.deepEqual(users.map((u) => u.LastName), ["O'Brien"]);
});

test('a 503 storm is retried until it passes', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake, { maxRetries: 5 });
  t.teardown(() => client.close());
  for (let i = 0; i < 5; i++) fake.faults.nextResponses.push({ status: 503, path: '/Groups' });
  const res = await client.request<{ value: unknown[] }>('GET', '/Groups');
  t.is(res.attempts, 6);
  t.true(res.data.value.length >= 1);
});

test('a 503 storm longer than maxRetries reaches the caller as RetryableError', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake);
  t.teardown(() => client.close());
  for (let i = 0; i < 5; i++) fake.faults.nextResponses.push({ status: 503, path: '/Groups' });
  const err = await t.throwsAsync(client.get('/Groups'), { instanceOf: RetryableError });
  t.regex(err!.message, /HTTP 503/);
  t.is(fake.requests.filter((r) => r.path === '/xapi/v1/Groups').length, 5, 'default: 1 try + 4 retries');
});

test('429 with Retry-After is honoured', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake);
  t.teardown(() => client.close());
  fake.faults.nextResponses.push({ status: 429, retryAfter: 1, path: '/Groups' });
  await client.get('/Groups');
  const [first, second] = fake.requests.filter((r) => r.path === '/xapi/v1/Groups');
  t.is(first!.status, 429);
  t.is(second!.status, 200);
  t.true(second!.at - first!.at >= 950, `waited ${second!.at - first!.at} ms`);
});

test('an HTML 502 from a proxy is a RetryableError, not a JSON crash', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake, { maxRetries: 0 });
  t.teardown(() => client.close());
  fake.faults.nextResponses.push({ status: 502, html: true, path: '/Users' });
  const err = await t.throwsAsync(client.get('/Users'), { instanceOf: RetryableError });
  t.regex(err!.message, /HTTP 502/);
});

test('an HTML error page with a non-retryable status becomes a readable TerminalError', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake);
  t.teardown(() => client.close());
  fake.faults.nextResponses.push({ status: 500, html: true, path: '/Users' });
  const err = await t.throwsAsync(client.get('/Users'), { instanceOf: TerminalError });
  t.regex(err!.message, /^GET \/Users: 3CX answered HTTP 500: 500 Error/);
});

test('a server certificate from an unknown CA is refused (no caFile: system roots only)', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake, { caFile: undefined, maxRetries: 3 });
  t.teardown(() => client.close());
  const err = await t.throwsAsync(client.get('/Users'), { instanceOf: TerminalError });
  t.is(err!.code, 'TLS');
  t.regex(err!.message, /could not be verified .*set target\.caFile/);
  t.is(fake.requests.length, 0, 'nothing reached the server, not even the token request');
});

test('a server certificate from a different CA than caFile is refused', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const client = clientFor(fake, { caFile: otherCaFile() });
  t.teardown(() => client.close());
  const err = await t.throwsAsync(client.get('/Users'), { instanceOf: TerminalError });
  t.is(err!.code, 'TLS');
  t.is(fake.requests.length, 0);
});

test('plain http to a non-loopback host is refused', (t) => {
  t.throws(() => clientFor({ url: 'http://pbx.example.com', clientId: '900', clientSecret: 'x' } as never), { message: /must use https/ });
});

test('neither the client secret nor tokens reach the log', async (t) => {
  const fake = await startFake();
  t.teardown(() => fake.close());
  const file = join(mkdtempSync(join(tmpdir(), 'pbxsync-3cx-log-')), 'log.jsonl');
  const logger = createLogger({ level: 'debug', file, silent: true });
  const client = clientFor(fake, { logger });
  t.teardown(() => client.close());
  fake.faults.nextResponses.push({ status: 503, path: '/Users' });
  await client.get('/Users');
  const token = fake.currentToken()!;
  fake.faults.nextResponses.push({ status: 401, path: '/Groups', body: '' }, { status: 401, path: '/Groups', body: '' });
  const err = await t.throwsAsync(client.get('/Groups'));
  logger.error('failed', { err: err!.message, secret: fake.clientSecret });
  await new Promise((r) => logger.on('finish', r).end());
  const log = readFileSync(file, 'utf8');
  t.regex(log, /retry 1\/4/, 'the log was written');
  t.false(log.includes(fake.clientSecret));
  t.false(log.includes(token));
  t.false(err!.message.includes(fake.clientSecret));
});

/** A self-signed CA unrelated to the test CA that signed the fake's certificate. */
function otherCaFile(): string {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 1024, e: 0x10001 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const subject = [{ name: 'commonName', value: 'some other CA' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const file = join(mkdtempSync(join(tmpdir(), 'pbxsync-other-ca-')), 'ca.pem');
  writeFileSync(file, forge.pki.certificateToPem(cert));
  return file;
}

import test from 'ava';
import { Secret } from '../../src/config/secret.js';
import { createMetrics } from '../../src/daemon/metrics.js';
import { healthFromStatus, startStatusServer, type StatusServerOptions } from '../../src/daemon/status.js';
import { ConfigError, TerminalError } from '../../src/errors/index.js';
import { registerSecret } from '../../src/log.js';
import { captureLogger } from './_logger.js';

const healthyStatus = { managed: 3, sources: [{ name: 'hr', health: { at: '2024-01-01T00:00:00Z', ok: true } }] };

async function start(overrides: Partial<StatusServerOptions> = {}) {
  const metrics = createMetrics();
  const server = await startStatusServer({
    listen: '127.0.0.1:0',
    getStatus: async () => healthyStatus,
    metrics,
    logger: captureLogger().logger,
    ...overrides,
  });
  return { server, metrics };
}

async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(url, { headers, method });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text(), headers: res.headers };
}

test('GET /healthz, /status and /metrics without a token', async (t) => {
  const { server, metrics } = await start();
  t.teardown(server.close);
  metrics.managedUsers.set(3);
  t.regex(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.like(await get(`${server.url}/healthz`), { status: 200, body: 'ok\n' });
  const status = await get(`${server.url}/status`);
  t.is(status.status, 200);
  t.regex(status.type!, /^application\/json/);
  t.deepEqual(JSON.parse(status.body), healthyStatus);
  const m = await get(`${server.url}/metrics`);
  t.is(m.status, 200);
  t.is(m.type, metrics.registry.contentType);
  t.regex(m.body, /^pbxsync_managed_users 3$/m);
  t.regex(m.body, /^# HELP pbxsync_runs_total /m);
});

const statusCodes: Array<[string, string, number]> = [
  ['unknown path', '/nope', 404],
  ['POST', '/status', 405],
  ['HEAD /healthz', '/healthz', 200],
];
for (const [title, urlPath, code] of statusCodes) {
  test(`status server answers ${code} for ${title}`, async (t) => {
    const { server } = await start();
    t.teardown(server.close);
    const method = title.split(' ')[0] === 'POST' ? 'POST' : title.startsWith('HEAD') ? 'HEAD' : 'GET';
    t.is((await get(`${server.url}${urlPath}`, {}, method)).status, code);
  });
}

test('/healthz is 503 with reasons when the last run of a source failed', async (t) => {
  const { server } = await start({
    getStatus: async () => ({
      sources: [
        { name: 'hr', health: { ok: true } },
        { name: 'entra', health: { ok: false, error: 'token endpoint returned 401' } },
      ],
    }),
  });
  t.teardown(server.close);
  const res = await get(`${server.url}/healthz`);
  t.is(res.status, 503);
  t.deepEqual(JSON.parse(res.body), { status: 'degraded', reasons: ['source entra: last run failed: token endpoint returned 401'] });
});

test('/healthz is 503 when the status cannot be collected, /status 500 without details', async (t) => {
  const { server } = await start({
    getStatus: async () => {
      throw new Error('state file locked');
    },
  });
  t.teardown(server.close);
  const health = await get(`${server.url}/healthz`);
  t.is(health.status, 503);
  t.deepEqual(JSON.parse(health.body).reasons, ['status unavailable: state file locked']);
  const status = await get(`${server.url}/status`);
  t.is(status.status, 500);
  t.false(status.body.includes('state file locked'));
});

const healthTable: Array<[string, unknown, boolean, string[]]> = [
  ['no sources', { sources: [] }, true, []],
  ['a source never run', { sources: [{ name: 'hr' }] }, true, []],
  ['unknown shape', 'running', true, []],
  ['two failed', { sources: [{ name: 'a', health: { ok: false } }, { name: 'b', health: { ok: false, error: 'x' } }] }, false, ['source a: last run failed', 'source b: last run failed: x']],
  [
    'degraded sources, after failed runs, by name',
    { sources: [{ name: 'b', degraded: 'last file x.csv went to failed/ (held)' }, { name: 'a', health: { ok: false }, degraded: 'runs fail since t' }] },
    false,
    ['source a: last run failed', 'source a: runs fail since t', 'source b: last file x.csv went to failed/ (held)'],
  ],
];
for (const [title, status, healthy, reasons] of healthTable) {
  test(`healthFromStatus: ${title}`, (t) => {
    t.deepEqual(healthFromStatus(status), { healthy, reasons });
  });
}

const tokenCases: Array<[string, Record<string, string>, number]> = [
  ['no header', {}, 401],
  ['wrong token', { Authorization: 'Bearer not-the-token' }, 401],
  ['wrong scheme', { Authorization: 'Basic c2VjcmV0LXRva2VuLTEyMzQ=' }, 401],
  ['token prefix only', { Authorization: 'Bearer secret-token' }, 401],
  ['right token', { Authorization: 'Bearer secret-token-1234' }, 200],
  ['right token, lower-case scheme', { Authorization: 'bearer secret-token-1234' }, 200],
];
for (const [title, headers, code] of tokenCases) {
  test(`with a token, /status and /metrics answer ${code} for ${title}; /healthz stays open`, async (t) => {
    const { server } = await start({ token: new Secret('secret-token-1234') });
    t.teardown(server.close);
    t.is((await get(`${server.url}/status`, headers)).status, code);
    t.is((await get(`${server.url}/metrics`, headers)).status, code);
    t.is((await get(`${server.url}/healthz`)).status, 200);
  });
}

test('a 401 asks for a bearer token', async (t) => {
  const { server } = await start({ token: new Secret('secret-token-1234') });
  t.teardown(server.close);
  const res = await get(`${server.url}/status`);
  t.is(res.headers.get('www-authenticate'), 'Bearer realm="pbxsync"');
  t.false(res.body.includes('secret-token-1234'));
});

const refusals: Array<[string, string]> = [
  ['all IPv4 interfaces', '0.0.0.0:0'],
  ['all IPv6 interfaces', '[::]:0'],
  ['a LAN address', '192.0.2.10:0'],
];
for (const [title, listen] of refusals) {
  test(`refuses to listen on ${title} without a token`, async (t) => {
    const err = await t.throwsAsync(start({ listen }), { instanceOf: ConfigError });
    t.is(err!.problems[0]!.path, 'status.listen');
    t.regex(err!.message, /not a loopback address; set status\.token/);
  });
}

test('listens beyond loopback when a token is set', async (t) => {
  const { server } = await start({ listen: '0.0.0.0:0', token: new Secret('secret-token-1234') });
  t.teardown(server.close);
  const port = new URL(server.url).port;
  t.is((await get(`http://127.0.0.1:${port}/status`, { Authorization: 'Bearer secret-token-1234' })).status, 200);
});

test('loopback listen addresses need no token', async (t) => {
  for (const listen of ['127.0.0.1:0', 'localhost:0']) {
    const { server } = await start({ listen });
    t.is((await get(`${server.url}/healthz`)).status, 200, listen);
    await server.close();
  }
});

test('/status never shows a secret, as a Secret or as a registered raw value', async (t) => {
  registerSecret('raw-registered-value-77');
  const { server } = await start({
    getStatus: async () => ({ a: new Secret('secret-object-value-88'), b: 'error: login raw-registered-value-77 refused' }),
  });
  t.teardown(server.close);
  const body = (await get(`${server.url}/status`)).body;
  t.deepEqual(JSON.parse(body), { a: '[redacted]', b: 'error: login [redacted] refused' });
});

test('close() returns while a keep-alive client is still connected', async (t) => {
  const { server } = await start();
  await get(`${server.url}/healthz`, { Connection: 'keep-alive' });
  await server.close();
  await t.throwsAsync(fetch(`${server.url}/healthz`));
});

test('a port already taken is an error naming the address and the setting', async (t) => {
  const { server } = await start();
  t.teardown(server.close);
  const taken = new URL(server.url).host;
  const err = await t.throwsAsync(start({ listen: taken }), { instanceOf: TerminalError });
  t.is(err!.message, `the status server cannot listen on ${taken} (status.listen): listen EADDRINUSE: address already in use ${taken}`);
});

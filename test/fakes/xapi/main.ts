/**
 * Run the fake 3CX XAPI as a standalone process (benchmarks, manual runs).
 *
 *   node dist/test/fakes/xapi/main.js [--port N] [--https --ca-out ca.pem] [--latency-ms N]
 *        [--client-id 900] [--client-secret S] [--seed-users N] [--page-cap N]
 *        [--no-unique-email] [--legacy-expires-in]
 *
 * Prints one JSON line `{ "url", "clientId", "clientSecret", "caFile" }` on stdout once listening
 * (`caFile` is null without --https), then serves until SIGINT/SIGTERM.
 *
 * Control endpoint (no auth, not logged), for driving faults from another process:
 *   POST /__fake/faults      {"nextResponses":[{"status":429,"retryAfter":1,"pathRegex":"Users"}],
 *                             "failWritesWith":{"code":"WARNINGS.XAPI.NOT_SUPPORTED"}|null,
 *                             "latencyMs":50, "revokeTokens":true}
 *   POST /__fake/reset-log   GET /__fake/requests   GET /__fake/stats   GET /__fake/state
 *   POST /__fake/seed-users  {"count":100}
 */
import { copyFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createTestCa } from '../../helpers/tls.js';
import { startFakeXapi, type FakeXapiOptions } from './server.js';

function parseArgs(argv: string[]): Map<string, string | true> {
  const out = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    if (eq > 0) {
      out.set(a.slice(2, eq), a.slice(eq + 1));
    } else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) {
      out.set(a.slice(2), argv[++i]!);
    } else {
      out.set(a.slice(2), true);
    }
  }
  return out;
}

function num(args: Map<string, string | true>, name: string): number | undefined {
  const v = args.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v === true || !Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a non-negative number`);
  return n;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const known = new Set([
    'port',
    'https',
    'ca-out',
    'latency-ms',
    'client-id',
    'client-secret',
    'seed-users',
    'page-cap',
    'no-unique-email',
    'legacy-expires-in',
  ]);
  for (const k of args.keys()) if (!known.has(k)) throw new Error(`unknown flag --${k}`);

  const opts: FakeXapiOptions = {
    port: num(args, 'port') ?? 0,
    latencyMs: num(args, 'latency-ms'),
    pageCap: num(args, 'page-cap'),
    uniqueEmail: !args.has('no-unique-email'),
    legacyExpiresInMinutes: args.has('legacy-expires-in'),
  };
  const cid = args.get('client-id');
  const secret = args.get('client-secret');
  if (typeof cid === 'string') opts.clientId = cid;
  if (typeof secret === 'string') opts.clientSecret = secret;

  let caFile: string | null = null;
  if (args.has('https')) {
    const ca = createTestCa();
    opts.tls = ca.issue(['localhost']);
    caFile = ca.caFile;
    const out = args.get('ca-out');
    if (typeof out === 'string') {
      caFile = resolve(out);
      copyFileSync(ca.caFile, caFile);
    }
  }

  const seed = num(args, 'seed-users') ?? 0;
  // Seeded users need more room than the default 100–999 range.
  if (seed > 800) opts.defaultNumberRange = { from: '10000', to: '99999' };

  const fake = await startFakeXapi(opts);
  if (seed > 0) fake.seedUsers(seed);

  process.stdout.write(`${JSON.stringify({ url: fake.url, clientId: fake.clientId, clientSecret: fake.clientSecret, caFile })}\n`);

  const stop = (): void => {
    void fake.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(`fake-xapi: ${(e as Error).message}\n`);
  process.exit(1);
});

/**
 * Benchmark: how close does the 3CX target get to the throughput its concurrency allows, and does its write
 * limit hold as the SERVER sees it?
 *
 * Starts the fake XAPI as a separate process (so its CPU does not compete with the client's) over HTTPS with
 * a fixed latency per request, then pushes N createUser calls through a p-queue of concurrency C (C calls in
 * flight at any time, as apply's lanes keep them):
 *   1. writesPerSecond far above what C can reach: throughput as a fraction of C ÷ latency (target ≥ 85 %);
 *   2. writesPerSecond that binds (default 200/s): throughput as a fraction of the limit, and the most
 *      requests the fake received in any rolling 1-s window (must be ≤ the limit).
 *
 *   node dist/bench/threecx-apply.js [--count 5000] [--concurrency 20] [--latency-ms 20] [--rate 200]
 *   (or: npx tsx bench/threecx-apply.ts ...)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { newUserFields } from '../src/model/index.js';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import axios from 'axios';
import PQueue from 'p-queue';
import { Secret } from '../src/config/secret.js';
import { silentLogger } from '../src/log.js';
import { XapiClient } from '../src/targets/threecx/client.js';
import { ThreeCxTarget } from '../src/targets/threecx/target.js';
import type { CreateUserInput } from '../src/targets/types.js';

interface Args {
  count: number;
  concurrency: number;
  latencyMs: number;
  rate: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { count: 5000, concurrency: 20, latencyMs: 20, rate: 200 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]!.replace(/^--/, '').replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) as keyof Args;
    const value = Number(argv[i + 1]);
    if (!(key in args) || !Number.isFinite(value) || value <= 0) throw new Error(`bad argument ${argv[i]} ${argv[i + 1]}`);
    args[key] = value;
  }
  return args;
}

interface Fake {
  url: string;
  clientId: string;
  clientSecret: string;
  caFile: string;
  process: ChildProcess;
}

/** Starts test/fakes/xapi/main as a child process (the .ts file under tsx, the compiled .js otherwise). */
async function startFakeProcess(latencyMs: number): Promise<Fake> {
  const ts = import.meta.url.endsWith('.ts');
  const main = fileURLToPath(new URL(`../test/fakes/xapi/main.${ts ? 'ts' : 'js'}`, import.meta.url));
  const child = spawn(process.execPath, [...(ts ? ['--import', 'tsx'] : []), main, '--https', '--latency-ms', String(latencyMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`fake XAPI exited with ${code}`)));
  });
  const info = JSON.parse(line) as Omit<Fake, 'process'>;
  return { ...info, process: child };
}

interface LoggedRequest {
  method: string;
  path: string;
  at: number;
}

/** Most entries in any rolling window of `ms`, over sorted timestamps. */
function maxInWindow(times: number[], ms: number): number {
  let best = 0;
  for (let lo = 0, hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! >= ms) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

function input(i: number): CreateUserInput {
  return {
    ...newUserFields(),
    extension: String(20000 + i),
    sendWelcome: false,
    firstName: `Bench${i}`,
    lastName: 'User',
    email: `bench${i}@example.test`,
  };
}

interface Result {
  run: string;
  writesPerSecond: number;
  seconds: number;
  perSecond: number;
  ideal: number;
  maxWindow: number;
}

async function run(name: string, args: Args, writesPerSecond: number): Promise<Result> {
  const fake = await startFakeProcess(args.latencyMs);
  try {
    const logger = silentLogger();
    const client = new XapiClient({
      baseUrl: fake.url,
      clientId: fake.clientId,
      clientSecret: new Secret(fake.clientSecret),
      caFile: fake.caFile,
      timeoutMs: 30_000,
      logger,
      writesPerSecond,
    });
    const target = new ThreeCxTarget({ client, logger, pageSize: 100, limits: { concurrency: args.concurrency, writesPerSecond } });
    await target.listDepartments(); // token and group cache, outside the measurement
    const queue = new PQueue({ concurrency: args.concurrency });
    const started = performance.now();
    await Promise.all(Array.from({ length: args.count }, (_, i) => queue.add(() => target.createUser(input(i)))));
    const seconds = (performance.now() - started) / 1000;
    await target.close();

    const httpsAgent = new https.Agent({ ca: readFileSync(fake.caFile, 'utf8') });
    const log = (await axios.get<{ value: LoggedRequest[] }>(`${fake.url}/__fake/requests`, { httpsAgent, maxContentLength: Infinity })).data.value;
    const writes = log.filter((r) => r.method !== 'GET' && r.path === '/xapi/v1/Users').map((r) => r.at).sort((a, b) => a - b);
    if (writes.length !== args.count) throw new Error(`expected ${args.count} creates at the fake, saw ${writes.length}`);
    const perSecond = args.count / seconds;
    const byConcurrency = args.concurrency / (args.latencyMs / 1000);
    return {
      run: name,
      writesPerSecond,
      seconds,
      perSecond,
      ideal: Math.min(byConcurrency, writesPerSecond),
      maxWindow: maxInWindow(writes, 1000),
    };
  } finally {
    fake.process.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const results = [
    await run('unbound', args, 100_000),
    await run('rate-limited', args, args.rate),
  ];
  console.log(`3CX target: ${args.count} createUser calls, concurrency ${args.concurrency}, ${args.latencyMs} ms latency per request (HTTPS, fake in its own process)`);
  console.table(
    results.map((r) => ({
      run: r.run,
      'writes/s limit': r.writesPerSecond,
      'time s': r.seconds.toFixed(1),
      'creates/s': r.perSecond.toFixed(0),
      'ideal/s': r.ideal.toFixed(0),
      'of ideal': `${((100 * r.perSecond) / r.ideal).toFixed(1)} %`,
      'max in any 1 s at server': r.maxWindow,
      'limit held': r.maxWindow <= r.writesPerSecond ? 'yes' : 'NO',
    })),
  );
  const unbound = results[0]!;
  const bound = results[1]!;
  const ok = unbound.perSecond / unbound.ideal >= 0.85 && bound.maxWindow <= bound.writesPerSecond;
  console.log(ok ? 'PASS: ≥ 85 % of C ÷ latency unbound; rate limit never exceeded' : 'FAIL: see the table');
  process.exitCode = ok ? 0 : 1;
}

await main();

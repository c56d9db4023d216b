/**
 * Shared set-up of the 3CX target tests: the fake XAPI over HTTPS with this process's test CA, and a
 * client/target pointed at it through `caFile` (so TLS verification really runs).
 */
import { Secret } from '../../../src/config/secret.js';
import { newUserFields } from '../../../src/model/index.js';
import { silentLogger, type Logger } from '../../../src/log.js';
import type { PbxUser, UserFields } from '../../../src/model/index.js';
import type { CreateUserInput } from '../../../src/targets/types.js';
import { XapiClient, type XapiClientOptions } from '../../../src/targets/threecx/client.js';
import { ThreeCxTarget } from '../../../src/targets/threecx/target.js';
import { startFakeXapi, type FakeXapi, type FakeXapiOptions } from '../../fakes/xapi/server.js';
import { createTestCa } from '../../helpers/tls.js';

/** Starts the fake on 127.0.0.1 with a certificate from the test CA. */
export async function startFake(options: FakeXapiOptions = {}): Promise<FakeXapi> {
  return startFakeXapi({ tls: createTestCa().issue(), ...options });
}

/** A client for the fake; fast backoff so retry tests take milliseconds. */
export function clientFor(fake: FakeXapi, overrides: Partial<XapiClientOptions> = {}): XapiClient {
  return new XapiClient({
    baseUrl: fake.url,
    clientId: fake.clientId,
    clientSecret: new Secret(fake.clientSecret),
    caFile: createTestCa().caFile,
    timeoutMs: 10_000,
    logger: silentLogger(),
    retryBaseMs: 5,
    ...overrides,
  });
}

/** A target for the fake. */
export function targetFor(fake: FakeXapi, overrides: Partial<XapiClientOptions> & { pageSize?: number; logger?: Logger } = {}): ThreeCxTarget {
  const { pageSize = 50, ...clientOverrides } = overrides;
  return new ThreeCxTarget({
    client: clientFor(fake, clientOverrides),
    logger: overrides.logger ?? silentLogger(),
    pageSize,
    limits: { concurrency: 8, writesPerSecond: overrides.writesPerSecond },
  });
}

/** A complete desired user, in canonical form. */
export function userInput(overrides: Partial<CreateUserInput> = {}): CreateUserInput {
  return {
    extension: '200',
    sendWelcome: false,
    ...newUserFields(),
    firstName: 'Amanda',
    lastName: 'Camden',
    email: 'amanda.camden@example.com',
    mobile: '+491712345678',
    vmPin: '4711',
    ...overrides,
  };
}

/** The UserFields part of a create input or a listed user. */
export function fieldsOf(u: CreateUserInput | PbxUser): UserFields {
  const { extension: _e, ...rest } = u as CreateUserInput & PbxUser;
  const out = { ...rest } as Partial<CreateUserInput & PbxUser>;
  delete out.sendWelcome;
  delete out.id;
  return out as UserFields;
}

/**
 * What a planner would send: the fields of `desired` that differ from `actual`. Options compare per key the
 * desired side sets (options are open-ended; the PBX has many more).
 */
export function changedFields(desired: UserFields, actual: PbxUser): Partial<UserFields> {
  const out: Partial<UserFields> = {};
  for (const key of Object.keys(desired) as Array<keyof UserFields>) {
    if (key === 'options') {
      const diff = Object.entries(desired.options).some(([k, v]) => actual.options[k] !== v);
      if (diff) out.options = desired.options;
      continue;
    }
    if (JSON.stringify(desired[key]) !== JSON.stringify(actual[key])) (out as Record<string, unknown>)[key] = desired[key];
  }
  return out;
}

/** Drains an async iterable. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Logged requests under /xapi/v1 (not the token endpoint), as `METHOD path`. */
export function apiCalls(fake: FakeXapi): string[] {
  return fake.requests.filter((r) => r.path.startsWith('/xapi/v1')).map((r) => `${r.method} ${r.path.slice('/xapi/v1'.length)}`);
}

/** Token requests logged by the fake. */
export function tokenRequests(fake: FakeXapi): number {
  return fake.requests.filter((r) => r.path === '/connect/token').length;
}

import { randomUUID } from 'node:crypto';
import type { PbxUser, UserFields } from '../../src/model/index.js';
import type { CreatedUser, CreateUserInput, DeleteResult, Target, TargetLimits } from '../../src/targets/types.js';

/** One recorded call. */
export interface Call {
  method: 'createUser' | 'updateUser' | 'deleteUsers' | 'ensureDepartments' | 'commit';
  /** User id (update, delete) or extension (create) or department list. */
  subject: string;
  changes?: Partial<UserFields>;
  at: number;
}

interface Failure {
  method: Call['method'];
  subject?: string;
  error: () => Error;
  times: number;
}

/**
 * A Target test double: users in a Map, every call recorded with a timestamp, chosen calls failing with a
 * chosen error a chosen number of times, optional latency per write.
 */
export class MemoryTarget implements Target {
  readonly kind = 'memory';
  readonly users = new Map<string, PbxUser>();
  readonly departments = new Set<string>(['DEFAULT']);
  readonly calls: Call[] = [];
  private readonly failures: Failure[] = [];
  private writes = 0;
  /** Latency of each write, ms. */
  delayMs = 0;
  /** Called at the start of each write (before latency), e.g. to abort mid-run. */
  onWrite?: (call: Call) => void;

  constructor(
    readonly limits: TargetLimits = { concurrency: 4 },
    users: PbxUser[] = [],
  ) {
    for (const u of users) this.users.set(u.id, structuredClone(u));
  }

  /** The next `times` calls of `method` (on `subject`, when given) throw `error()`. */
  failOn(method: Call['method'], error: () => Error, options: { subject?: string; times?: number } = {}): void {
    this.failures.push({ method, subject: options.subject, error, times: options.times ?? Number.POSITIVE_INFINITY });
  }

  /** Calls of one method. */
  callsOf(method: Call['method']): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  private async enter(call: Omit<Call, 'at'>): Promise<void> {
    const c: Call = { ...call, at: Date.now() };
    this.calls.push(c);
    if (c.method !== 'commit') this.writes++;
    this.onWrite?.(c);
    if (this.delayMs && c.method !== 'commit') await new Promise((r) => setTimeout(r, this.delayMs));
    const f = this.failures.find((x) => x.method === c.method && x.times > 0 && (x.subject === undefined || x.subject === c.subject));
    if (f) {
      f.times--;
      throw f.error();
    }
  }

  async *listUsers(): AsyncIterable<PbxUser> {
    for (const u of this.users.values()) yield structuredClone(u);
  }

  async listDepartments(): Promise<string[]> {
    return [...this.departments];
  }

  async ensureDepartments(names: string[]): Promise<void> {
    await this.enter({ method: 'ensureDepartments', subject: names.join(',') });
    for (const n of names) this.departments.add(n);
  }

  async createUser(input: CreateUserInput): Promise<PbxUser> {
    await this.enter({ method: 'createUser', subject: input.extension, changes: input });
    const { sendWelcome: _s, ...fields } = input;
    const user: PbxUser = { ...fields, id: randomUUID(), vmPin: input.vmPin ?? '1234' };
    this.users.set(user.id, user);
    return structuredClone(user);
  }

  async updateUser(id: string, changes: Partial<UserFields>): Promise<void> {
    await this.enter({ method: 'updateUser', subject: id, changes });
    const u = this.users.get(id);
    if (!u) throw new Error(`no user ${id}`);
    Object.assign(u, structuredClone(changes));
  }

  async deleteUsers(ids: string[]): Promise<DeleteResult[]> {
    await this.enter({ method: 'deleteUsers', subject: ids.join(',') });
    return ids.map((id) => (this.users.delete(id) ? { id } : { id, error: 'not found' }));
  }

  async sendWelcome(): Promise<void> {}

  async commit(): Promise<void> {
    await this.enter({ method: 'commit', subject: '' });
  }

  writeCount(): number {
    return this.writes;
  }

  async close(): Promise<void> {}

  /** Users as an ActualState user list. */
  snapshot(): PbxUser[] {
    return [...this.users.values()].map((u) => structuredClone(u));
  }
}

/**
 * A MemoryTarget that also offers Target.createUsers (as the embedded store does): each input goes through
 * createUser (recorded, failing as configured), a failure becoming that input's result.
 */
export class BatchMemoryTarget extends MemoryTarget {
  /** Sizes of the createUsers calls, in order. */
  readonly batches: number[] = [];

  async createUsers(inputs: CreateUserInput[]): Promise<Array<CreatedUser | Error>> {
    this.batches.push(inputs.length);
    const out: Array<CreatedUser | Error> = [];
    for (const input of inputs) {
      try {
        const user = await this.createUser(input);
        out.push({ id: user.id, extension: user.extension });
      } catch (err) {
        out.push(err as Error);
      }
    }
    return out;
  }
}

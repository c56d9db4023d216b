import type { ThreeCxTargetConfig } from '../../config/types.js';
import { ConflictError, RetryableError, TerminalError } from '../../errors/index.js';
import { registerSecret, type Logger } from '../../log.js';
import type { PbxUser, UserFields } from '../../model/index.js';
import type { CreateUserInput, DeleteResult, Target, TargetLimits } from '../types.js';
import { odataString, XapiClient } from './client.js';
import {
  canonicalOptions,
  describeUser,
  fromXapiUser,
  normalizeDid,
  normalizeEmail,
  normalizeMac,
  OPTION_SELECT,
  toXapiFields,
  toXapiGroups,
  toXapiPhones,
  USER_EXPAND,
  USER_SELECT,
} from './normalize.js';
import { describeWarning } from './warnings.js';
import type { XapiDidNumber, XapiGroup, XapiRoute, XapiRouteSet, XapiUser, XapiUserDeleteError } from './types.js';

/** Options of the {@link ThreeCxTarget} constructor (use {@link ThreeCxTarget.fromConfig} normally). */
export interface ThreeCxTargetOptions {
  client: XapiClient;
  logger: Logger;
  /** `$top` of listings. */
  pageSize: number;
  limits: TargetLimits;
}

/** `Defs/Pbx.GetRoutes` and `Users/Pbx.BatchDelete` are sent for this many DN ids at a time. */
const BATCH = 100;

interface UserInfo {
  extension: string;
  name: string;
}

/**
 * The 3CX V20 target: users, departments (groups), roles, phones and DIDs through XAPI.
 *
 * 3CX has no DID field on a user: DIDs belong to trunks and are routed to a DN with `Trunks/Pbx.SetRoutes`
 * (whole list per DN) and read with `Defs/Pbx.GetRoutes`. Departments are groups; the role lives on each
 * group membership. Writes are durable when 3CX answers, so `commit()` does nothing.
 */
export class ThreeCxTarget implements Target {
  readonly kind = '3cx';
  readonly limits: TargetLimits;
  private readonly client: XapiClient;
  private readonly logger: Logger;
  private readonly pageSize: number;
  private groups?: Promise<Map<string, XapiGroup>>;
  private readonly groupCreates = new Map<string, Promise<number>>();
  private didCatalogue?: Promise<Map<string, XapiDidNumber>>;
  /** Id → extension and name, from listings and creates: for messages and for BatchDelete's per-extension errors. */
  private readonly users = new Map<string, UserInfo>();

  constructor(options: ThreeCxTargetOptions) {
    this.client = options.client;
    this.logger = options.logger;
    this.pageSize = options.pageSize;
    this.limits = options.limits;
  }

  /** Builds the target and its XAPI client from the `target:` section of service.yml. */
  static fromConfig(config: ThreeCxTargetConfig, options: { logger: Logger }): ThreeCxTarget {
    const client = new XapiClient({
      baseUrl: config.url,
      clientId: config.clientId,
      clientSecret: config.clientSecret,
      caFile: config.caFile,
      timeoutMs: config.timeoutMs,
      logger: options.logger,
      writesPerSecond: config.writesPerSecond,
    });
    return new ThreeCxTarget({
      client,
      logger: options.logger,
      pageSize: config.pageSize,
      limits: { concurrency: config.concurrency, writesPerSecond: config.writesPerSecond },
    });
  }

  /**
   * Every user with memberships, role, phones and DIDs. Users are fetched a page at a time and their DIDs
   * with one `Defs/Pbx.GetRoutes` per page, so a listing costs two requests per page.
   */
  async *listUsers(signal?: AbortSignal): AsyncIterable<PbxUser> {
    const groups = await this.loadGroups(true);
    const names = new Map([...groups.values()].map((g) => [g.Id, g.Name ?? '']));
    let page: XapiUser[] = [];
    const flush = async function* (this: ThreeCxTarget) {
      const routes = await this.getRoutes(page.map((u) => u.Id), signal);
      for (const u of page) {
        registerSecret(typeof u.VMPIN === 'string' ? u.VMPIN : undefined);
        const user = fromXapiUser(u, { groupNames: names, dids: routes.get(u.Id) });
        this.remember(user);
        yield user;
      }
      page = [];
    }.bind(this);
    for await (const u of this.client.list<XapiUser>(
      '/Users',
      { select: `${USER_SELECT},${OPTION_SELECT}`, expand: USER_EXPAND, orderby: 'Id', pageSize: this.pageSize },
      signal,
    )) {
      page.push(u);
      if (page.length >= this.pageSize) yield* flush();
    }
    if (page.length) yield* flush();
  }

  /** Department (group) names, sorted. */
  async listDepartments(): Promise<string[]> {
    const groups = await this.loadGroups(true);
    return [...groups.keys()].sort();
  }

  /** Options as {@link listUsers} reads them back; CSV columns without an XAPI property are left out. */
  canonicalOptions(options: Readonly<Record<string, string>>): Record<string, string> {
    return canonicalOptions(options);
  }

  /** Creates the groups that do not exist yet (names compared exactly, as the diff compares them). */
  async ensureDepartments(names: string[]): Promise<void> {
    await this.loadGroups(true);
    for (const name of new Set(names)) await this.groupId(name);
  }

  /**
   * Creates a user in one `POST /Users` (fields, main and further departments with the role, phones);
   * then routes its DIDs and sends the welcome e-mail when asked. The user exists once the POST succeeded:
   * a failure of the DID routing or of the e-mail after it is logged, not thrown, and the returned user
   * shows what 3CX really holds, so the next sync plans the missing part as an update instead of trying to
   * create the user again.
   */
  async createUser(input: CreateUserInput): Promise<PbxUser> {
    const { extension, sendWelcome, ...fields } = input;
    const subject = describeUser(extension, fields.firstName, fields.lastName);
    const groups = await this.groupsBody(fields.department, fields.extraDepartments, fields.role);
    const body: Record<string, unknown> = {
      Number: extension,
      ...toXapiFields(fields, this.logger),
      PrimaryGroupId: groups[0].GroupId,
      Groups: groups,
      Phones: toXapiPhones(fields.phones),
    };
    let ambiguousRetry = false;
    let created: XapiUser;
    try {
      created = (
        await this.client.request<XapiUser>('POST', '/Users', {
          body,
          subject,
          onRetry: (err) => {
            if (err.code !== 'HTTP_429' && err.code !== 'HTTP_503' && err.code !== 'ECONNREFUSED') ambiguousRetry = true;
          },
        })
      ).data;
    } catch (err) {
      const recovered = ambiguousRetry && err instanceof ConflictError && err.field === 'extension' ? await this.findOwnCreate(input) : undefined;
      if (!recovered) throw await this.withHolder(err, body);
      this.logger.info(`${subject}: the create was retried after an unclear failure and had landed the first time; continuing`);
      created = recovered;
    }
    const id = String(created.Id);
    this.users.set(id, { extension, name: subject });

    let dids: string[] = [];
    if (fields.dids.length) {
      try {
        await this.setRoutes(id, fields.dids, subject);
        dids = fields.dids;
      } catch (err) {
        this.logger.warn(`${subject} was created, but its DIDs were not routed: ${(err as Error).message}`);
      }
    }
    if (sendWelcome && fields.email) {
      try {
        await this.sendWelcome(id);
      } catch (err) {
        this.logger.warn(`${subject} was created, but the welcome e-mail failed: ${(err as Error).message}`);
      }
    }
    const groupNames = new Map([...(await this.loadGroups()).values()].map((g) => [g.Id, g.Name ?? '']));
    // 3CX's 201 body is the created entity; navigation lists are only in it when expanded, so fall back to
    // what was sent for them.
    const seen: XapiUser = { ...created, Groups: created.Groups ?? groups, Phones: created.Phones ?? (body.Phones as XapiUser['Phones']) };
    if (seen.PrimaryGroupId == null) seen.PrimaryGroupId = groups[0].GroupId;
    return fromXapiUser(seen, { groupNames, dids });
  }

  /**
   * Changes only the fields given: one `PATCH /Users({Id})` with just those properties. A change of
   * department, further departments or role sends the whole `Groups` list (3CX replaces it), built from the
   * change plus the user's current memberships; phones likewise. DIDs go through `Trunks/Pbx.SetRoutes`.
   */
  async updateUser(id: string, changes: Partial<UserFields>): Promise<void> {
    const key = userKey(id);
    const known = this.users.get(id);
    let subject = known?.name ?? `user with 3CX id ${id}`;
    const body = toXapiFields(changes, this.logger);
    const groupsChange = changes.department !== undefined || changes.extraDepartments !== undefined || changes.role !== undefined;
    if (groupsChange || changes.phones !== undefined) {
      const current = await this.client.get<XapiUser>(
        `/Users(${key})`,
        { $select: 'Id,Number,FirstName,LastName,PrimaryGroupId', $expand: USER_EXPAND },
        { subject },
      );
      subject = describeUser(current.Number, current.FirstName, current.LastName);
      if (groupsChange) {
        const names = new Map([...(await this.loadGroups()).values()].map((g) => [g.Id, g.Name ?? '']));
        const now = fromXapiUser(current, { groupNames: names });
        const groups = await this.groupsBody(
          changes.department ?? now.department,
          changes.extraDepartments ?? now.extraDepartments,
          changes.role ?? now.role,
        );
        body.Groups = groups;
        body.PrimaryGroupId = groups[0].GroupId;
      }
      if (changes.phones !== undefined) body.Phones = toXapiPhones(changes.phones, current.Phones ?? []);
    }
    if (Object.keys(body).length > 0) {
      try {
        await this.client.patch(`/Users(${key})`, body, { subject });
      } catch (err) {
        throw await this.withHolder(err, body, id);
      }
    }
    if (changes.dids !== undefined) await this.setRoutes(id, changes.dids, subject);
  }

  /**
   * Deletes with `Users/Pbx.BatchDelete`, 100 at a time. 3CX reports failures per extension number, not
   * per id, so each id's number is known (from listings and creates) or looked up first. An id 3CX no
   * longer has counts as deleted: the goal is reached, and a resumed run must not fail on it.
   */
  async deleteUsers(ids: string[]): Promise<DeleteResult[]> {
    const results = new Map<string, DeleteResult>(ids.map((id) => [id, { id }]));
    const byNumber = new Map<string, string>();
    const names = new Map<string, string>();
    const present: string[] = [];
    for (const id of new Set(ids)) {
      let info = this.users.get(id);
      if (!info) {
        try {
          const u = await this.client.get<XapiUser>(`/Users(${userKey(id)})`, { $select: 'Id,Number,FirstName,LastName' });
          info = { extension: u.Number ?? '', name: describeUser(u.Number, u.FirstName, u.LastName) };
        } catch (err) {
          if (err instanceof TerminalError && err.code === 'XAPI.NOT_FOUND') {
            this.logger.debug(`3CX user id ${id} is already gone; counted as deleted`);
            continue;
          }
          results.set(id, { id, error: (err as Error).message });
          continue;
        }
      }
      byNumber.set(info.extension, id);
      names.set(id, info.name);
      present.push(id);
    }
    for (let i = 0; i < present.length; i += BATCH) {
      const chunk = present.slice(i, i + BATCH);
      try {
        const res = await this.client.post<{ value?: XapiUserDeleteError[] }>('/Users/Pbx.BatchDelete', { ids: chunk.map(Number) });
        const failed = new Set<string>();
        for (const row of res?.value ?? []) {
          const id = byNumber.get(row.ExtensionNumber ?? '');
          const why = row.Error ? describeWarning({ code: row.Error }).text : 'refused by 3CX';
          // 3CX names a user it did not find by the id that was sent: gone already, so the goal is met.
          if (!id && chunk.includes(row.ExtensionNumber ?? '') && row.Error?.includes('NOT_FOUND')) continue;
          if (id) {
            failed.add(id);
            results.set(id, { id, error: `${names.get(id)}: ${why}` });
          } else this.logger.warn(`3CX reported a delete failure for extension ${row.ExtensionNumber} that was not asked for: ${why}`);
        }
        for (const id of chunk) if (!failed.has(id)) this.users.delete(id);
      } catch (err) {
        for (const id of chunk) results.set(id, { id, error: (err as Error).message });
      }
    }
    return ids.map((id) => results.get(id)!);
  }

  /** `POST /Users({Id})/Pbx.SendWelcomeEmail`: 3CX mails the account details itself. */
  async sendWelcome(id: string): Promise<void> {
    await this.client.post(`/Users(${userKey(id)})/Pbx.SendWelcomeEmail`, undefined, { subject: this.users.get(id)?.name });
  }

  /** Nothing to do: 3CX writes are durable once answered. */
  async commit(): Promise<void> {}

  /** Write requests sent to 3CX (retries included). */
  writeCount(): number {
    return this.client.writeCount();
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private remember(user: PbxUser): void {
    this.users.set(user.id, { extension: user.extension, name: describeUser(user.extension, user.firstName, user.lastName) });
  }

  /** Groups by name, loaded once (or again when `refresh`). */
  private loadGroups(refresh = false): Promise<Map<string, XapiGroup>> {
    if (!this.groups || refresh) {
      const loading = (async () => {
        const map = new Map<string, XapiGroup>();
        for await (const g of this.client.list<XapiGroup>('/Groups', { select: 'Id,Name,IsDefault,Language', orderby: 'Id', pageSize: this.pageSize })) {
          if (g.Name) map.set(g.Name, g);
        }
        return map;
      })();
      // A failed load must not stick: the next call tries again.
      loading.catch(() => {
        if (this.groups === loading) this.groups = undefined;
      });
      this.groups = loading;
    }
    return this.groups;
  }

  /** The id of a department, creating it on first use (one POST per name even under concurrency). */
  private async groupId(name: string): Promise<number> {
    const groups = await this.loadGroups();
    const found = groups.get(name);
    if (found) return found.Id;
    let pending = this.groupCreates.get(name);
    if (!pending) {
      pending = (async () => {
        const g = await this.client.post<XapiGroup>('/Groups', { Name: name }, { subject: `department ${name}` });
        groups.set(name, { ...g, Name: name });
        this.logger.info(`3CX department ${name} created`);
        return g.Id;
      })().finally(() => this.groupCreates.delete(name));
      this.groupCreates.set(name, pending);
    }
    return pending;
  }

  private async groupsBody(department: string, extra: readonly string[], role: UserFields['role']) {
    const ids = new Map<string, number>();
    for (const name of new Set([department, ...extra])) ids.set(name, await this.groupId(name));
    return toXapiGroups(department, extra, role, (name) => ids.get(name)!);
  }

  /** DIDs routed to each DN id, as 3CX stores them. */
  private async getRoutes(ids: number[], signal?: AbortSignal): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>();
    for (let i = 0; i < ids.length; i += BATCH) {
      const res = await this.client.post<{ value?: XapiRouteSet[] }>(
        '/Defs/Pbx.GetRoutes',
        { ids: ids.slice(i, i + BATCH) },
        { write: false, signal },
      );
      for (const set of res?.value ?? []) out.set(set.Id, (set.Routes ?? []).map((r) => r.DID).filter((d): d is string => typeof d === 'string'));
    }
    return out;
  }

  /** The trunks' DIDs by E.164 form, loaded once and again when a DID is not found. */
  private loadDids(refresh = false): Promise<Map<string, XapiDidNumber>> {
    if (!this.didCatalogue || refresh) {
      const loading = (async () => {
        const map = new Map<string, XapiDidNumber>();
        for await (const d of this.client.list<XapiDidNumber>('/DidNumbers', { select: 'Number,TrunkId', pageSize: this.pageSize })) {
          const key = normalizeDid(d.Number);
          if (key) map.set(key, d);
        }
        return map;
      })();
      loading.catch(() => {
        if (this.didCatalogue === loading) this.didCatalogue = undefined;
      });
      this.didCatalogue = loading;
    }
    return this.didCatalogue;
  }

  /** Routes exactly `dids` to the user (SetRoutes replaces the DN's whole route list). */
  private async setRoutes(id: string, dids: readonly string[], subject: string): Promise<void> {
    let catalogue = await this.loadDids();
    if (dids.some((d) => !catalogue.has(normalizeDid(d) ?? ''))) catalogue = await this.loadDids(true);
    const routes: XapiRoute[] = [];
    for (const did of dids) {
      const entry = catalogue.get(normalizeDid(did) ?? '');
      if (!entry) {
        throw new TerminalError(`${subject}: DID ${did} is not a DID of any 3CX trunk (add it to a trunk first)`, { field: 'dids', code: 'XAPI.DID_UNKNOWN' });
      }
      // Sent in the trunk's own spelling: 3CX matches routes to trunk DIDs textually.
      routes.push({ DID: entry.Number, TrunkId: entry.TrunkId ?? undefined, DisplayName: subject.replace(/^user /, '') });
    }
    const body = { routes: { Id: Number(id), Routes: routes } };
    try {
      await this.client.post('/Trunks/Pbx.SetRoutes', body, { subject });
    } catch (err) {
      throw await this.withHolder(err, body.routes, id);
    }
  }

  /**
   * After an unclear failure (a 502/timeout on the first try) a retried create may collide with itself.
   * The user holding the extension is ours when its name and e-mail are exactly what was sent.
   */
  private async findOwnCreate(input: CreateUserInput): Promise<XapiUser | undefined> {
    const res = await this.client.get<{ value?: XapiUser[] }>('/Users', {
      $filter: `Number eq ${odataString(input.extension)}`,
      $select: USER_SELECT,
      $expand: USER_EXPAND,
    });
    const u = res?.value?.[0];
    if (!u) return undefined;
    const same = (u.FirstName ?? '') === input.firstName && (u.LastName ?? '') === input.lastName && normalizeEmail(u.EmailAddress) === normalizeEmail(input.email);
    return same ? u : undefined;
  }

  /**
   * Names who holds a contested value (DESIGN: conflicts name both parties). The lookup is best effort:
   * when it fails the original conflict is thrown unchanged.
   */
  private async withHolder(err: unknown, body: Record<string, unknown>, selfId?: string): Promise<unknown> {
    if (!(err instanceof ConflictError) || err.holder) return err;
    let holder: string | undefined;
    try {
      holder = await this.findHolder(err.field, body, selfId);
    } catch (lookupError) {
      if (lookupError instanceof RetryableError || lookupError instanceof TerminalError) {
        this.logger.debug(`could not find who holds the value: ${lookupError.message}`);
      } else throw lookupError;
    }
    if (!holder) return err;
    return new ConflictError(`${err.message}: held by ${holder}`, { cause: err.cause, code: err.code, field: err.field, holder });
  }

  private async findHolder(field: string | undefined, body: Record<string, unknown>, selfId?: string): Promise<string | undefined> {
    const other = (u: XapiUser) => String(u.Id) !== selfId;
    const who = (u: XapiUser) => describeUser(u.Number, u.FirstName, u.LastName);
    const select = 'Id,Number,FirstName,LastName';
    if (field === 'extension' && typeof body.Number === 'string') {
      const users = await this.client.get<{ value?: XapiUser[] }>('/Users', { $filter: `Number eq ${odataString(body.Number)}`, $select: select });
      const u = users?.value?.find(other);
      if (u) return who(u);
      // Extensions are unique across every DN kind: a queue, ring group or IVR may hold it.
      const peers = await this.client.get<{ value?: Array<{ Number?: string; Name?: string; Type?: string }> }>('/Peers', {
        $filter: `Number eq ${odataString(body.Number)}`,
        $select: 'Id,Number,Name,Type',
      });
      const p = peers?.value?.[0];
      return p ? `${p.Type ?? 'DN'} ${p.Number}${p.Name ? ` (${p.Name})` : ''}` : undefined;
    }
    if (field === 'email' && typeof body.EmailAddress === 'string' && body.EmailAddress) {
      const users = await this.client.get<{ value?: XapiUser[] }>('/Users', {
        $filter: `tolower(EmailAddress) eq ${odataString(body.EmailAddress.toLowerCase())}`,
        $select: select,
      });
      const u = users?.value?.find(other);
      return u ? who(u) : undefined;
    }
    if (field === 'phones' && Array.isArray(body.Phones)) {
      const macs = new Set(body.Phones.map((p) => normalizeMac((p as { MacAddress?: unknown }).MacAddress)));
      for await (const u of this.client.list<XapiUser>('/Users', { select, expand: 'Phones', orderby: 'Id', pageSize: this.pageSize })) {
        if (!other(u)) continue;
        const mac = (u.Phones ?? []).map((p) => normalizeMac(p.MacAddress)).find((m) => macs.has(m));
        if (mac) return `${who(u)}, phone ${mac}`;
      }
    }
    if (field === 'dids' && Array.isArray(body.Routes)) {
      const wanted = new Set((body.Routes as XapiRoute[]).map((r) => normalizeDid(r.DID)));
      const users: XapiUser[] = [];
      for await (const u of this.client.list<XapiUser>('/Users', { select, orderby: 'Id', pageSize: this.pageSize })) if (other(u)) users.push(u);
      const routes = await this.getRoutes(users.map((u) => u.Id));
      for (const u of users) {
        const did = (routes.get(u.Id) ?? []).find((d) => wanted.has(normalizeDid(d)));
        if (did) return `${who(u)}, DID ${normalizeDid(did)}`;
      }
    }
    return undefined;
  }
}

/** A user id as an OData key: digits only (3CX ids are int32), so a stray value cannot reshape the path. */
function userKey(id: string): number {
  if (!/^\d+$/.test(id)) throw new TerminalError(`"${id}" is not a 3CX user id`, { code: 'XAPI.BAD_ID' });
  return Number(id);
}

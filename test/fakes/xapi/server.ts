/**
 * A faithful fake of the 3CX V20 configuration API ("XAPI", OData at `/xapi/v1`, OAuth2 client
 * credentials at `/connect/token`) for tests and benchmarks. Real HTTP(S) server on 127.0.0.1.
 *
 * Source of truth: /work/shared/specs/3cx-xapi.md (facts in §1, checklist in §3) and 3CX's
 * OpenAPI 20.0.10 for field names. Where the spec marks behaviour [inferred], this fake picks the
 * following (a client that works here should work against a real PBX; if a choice turns out wrong,
 * change it here, in one place):
 *
 * Auth
 * - One active access token per client id: issuing a new one revokes the previous (old → 401).
 * - 401 on /xapi/v1 has an EMPTY body plus `WWW-Authenticate: Bearer error="invalid_token"`
 *   (ASP.NET bearer middleware behaviour), so clients must not assume a JSON body on 401.
 * - `legacyExpiresInMinutes` reports `expires_in` in minutes (pre-20.0.9); the token really lives
 *   `tokenLifetimeSeconds` either way. `client_secret_basic` (Authorization: Basic) is accepted too.
 *
 * OData
 * - Navigation properties are omitted unless `$expand`ed; nested navigation (e.g. `Rights` inside
 *   `Groups`) is omitted unless expanded too: `$expand=Groups($expand=Rights)`.
 * - Unknown properties in `$select`/`$filter`/`$expand` → 400. Unknown properties in a POST/PATCH
 *   body → 400 ("The property 'X' does not exist on type 'Pbx.User'"), wrong JSON types → 400.
 * - `$filter` type mismatch (`Number eq 100` on a string) → 400, like a real OData service.
 * - No server page cap unless `pageCap` is set (then `$top` larger than the cap, or no `$top`, is
 *   silently cut to the cap; no `@odata.nextLink`, matching what has been observed).
 * - `$search` is a case-insensitive substring match over the entity's main string properties.
 * - Alternate keys need the quoted literal: `/Users(Number='100')`; missing → 404 with the OData
 *   error envelope, code `WARNINGS.XAPI.NOT_FOUND`.
 *
 * Users
 * - Server defaults on create are filled like the admin console does (see {@link defaultUser}):
 *   random AuthID/AuthPassword/AccessPassword/DeskphonePassword, 6-digit VMPIN, Enabled/VMEnabled
 *   true, membership of the default group with role `users`, PrimaryGroupId = first group.
 * - Multiple validation errors are reported together: message lines joined with "\n", one detail each.
 * - Emergency numbers (911/112/15/17/18/999) as `Number` → `WARNINGS.XAPI.ALREADY_IN_USE` on target
 *   `Number` (no dedicated code exists in the Pbx.Warnings enum; the PBX treats them as taken by the
 *   emergency outbound rules). Non-digit `Number` → `WARNINGS.INVALID`, empty string →
 *   `WARNINGS.XAPI.CAN_NOT_BE_EMPTY_STRING`. Auto numbering skips emergency numbers.
 * - PATCH with a different `Number` → 400 `WARNINGS.XAPI.FORBIDDEN_CHANGE` target `Number`.
 * - `Groups`/`Phones` in a PATCH replace the whole list. If the primary group is no longer among the
 *   groups, `PrimaryGroupId` moves to the first remaining group.
 * - Unknown `RoleName` → 400 `WARNINGS.XAPI.NOT_FOUND` target `RoleName`; a `Groups` entry without
 *   `Rights` gets role `users`; the same GroupId twice → `WARNINGS.XAPI.DUPLICATE` target `Groups`.
 * - Email uniqueness (option `uniqueEmail`, default true) is case-insensitive; empty emails never clash.
 * - Length limits: FirstName/LastName > 50 → `WARNINGS.LENGTH_NOT_MORE_50_CHARS`; EmailAddress >
 *   255 → `WARNINGS.LENGTH_NOT_MORE_255_CHARS`. VMPIN must be 4–20 digits → `WARNINGS.XAPI.INVALID_PIN_NUMBER`.
 * - Phones: `MacAddress` must be exactly 12 hex digits without separators (else
 *   `WARNINGS.INVALID_HEX_CHARACTER`), stored lower-case; a MAC on another user →
 *   `WARNINGS.XAPI.MAC_USED_BY`; the same MAC twice in one list → `WARNINGS.MAC_ADDRESS_ALREADY_IN_USE`;
 *   unknown `TemplateName` → `WARNINGS.XAPI.NOT_FOUND`; more than `maxPhonesPerUser` (default 10)
 *   → `WARNINGS.XAPI.TOO_MANY_PHONES`. All with target `Phones`. A phone whose MAC was already on the
 *   same user keeps its Id, provisioning links and `Settings.Secret`.
 * - `Pbx.BatchDelete` returns 200 listing failures only; an unknown id is reported as
 *   `{ExtensionNumber: "<id>", Error: "WARNINGS.XAPI.NOT_FOUND"}`; the operator user
 *   (`state.operatorUserId`, unset by default) fails with `WARNINGS.OPERATOR_CANNOT_BE_DELETED`.
 * - Deleting a user removes its DID routes and its department memberships.
 *
 * Groups
 * - The default group `{Number:"GRP0000", Name:"DEFAULT", IsDefault:true}` always exists.
 *   Deleting it → `WARNINGS.GROUP_CANNOT_BE_DELETED`; deleting a group with members →
 *   `WARNINGS.GROUP_WITH_MEMBERS_CANNOT_BE_DELETED`. Duplicate group `Name` → `ALREADY_IN_USE`.
 * - PATCH `Members` replaces the membership list from the group side (`[{Number, Rights}]`).
 *
 * DIDs
 * - A DID belongs to at most one trunk (duplicate across trunks → `ALREADY_IN_USE` target `DidNumbers`)
 *   and is routed to at most one DN. `Trunks/Pbx.SetRoutes` replaces the DN's complete route list; a
 *   DID currently routed to another DN is MOVED to this one. A DID on no trunk (or not on the given
 *   `TrunkId`) → 400 `WARNINGS.XAPI.NOT_FOUND` target `DID`. Removing a DID from a trunk drops its route.
 * - `Defs/Pbx.GetRoutes` for an unknown id returns that id with an empty `Routes` list.
 *
 * Ids: users, groups and trunks share one DN id sequence starting at 10 (so an off-by-one or
 * "Id 0/1" assumption in a client shows up).
 *
 * Faults and the control endpoint (`/__fake/*`, no auth, never logged) are described on
 * {@link FakeXapiFaults} and in `main.ts`.
 */
import { randomBytes, randomInt } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  DEVICEINFO_PROPS,
  DIDNUMBER_PROPS,
  EMERGENCY_NUMBERS,
  ENUMS,
  GROUP_PROPS,
  INBOUNDRULE_PROPS,
  PEER_PROPS,
  PHONE_PROPS,
  RIGHTS_FLAGS,
  RIGHTS_PROPS,
  ROLE_NAMES,
  TEMPLATE_PROPS,
  TRUNK_PROPS,
  USERGROUP_PROPS,
  USER_PROPS,
  USER_TAGS,
  type DidRoute,
  type PropKind,
  type StoredMembership,
  type XapiDeviceInfo,
  type XapiGroup,
  type XapiPhone,
  type XapiPhoneTemplate,
  type XapiTrunk,
  type XapiUser,
} from './model.js';
import {
  ODataQueryError,
  filterProperties,
  matchesFilter,
  parseQueryOptions,
  sortRows,
  type QueryOptions,
} from './odata.js';

export type {
  DidRoute,
  StoredMembership,
  XapiDeviceInfo,
  XapiGroup,
  XapiPhone,
  XapiPhoneTemplate,
  XapiTrunk,
  XapiUser,
} from './model.js';
export { ROLE_NAMES, EMERGENCY_NUMBERS } from './model.js';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/** A trunk to seed at start-up. */
export interface TrunkSeed {
  /** Shown as `Gateway.Name` and as the Peer name. */
  name: string;
  /** Trunk DN number; auto ("10000", "10001", ...) when absent. */
  number?: string;
  didNumbers: string[];
}

/** Options of {@link startFakeXapi}. */
export interface FakeXapiOptions {
  /** Serve HTTPS with this key/cert (see `test/helpers/tls.ts`); plain HTTP when absent. */
  tls?: { key: string; cert: string };
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Service-principal number used as OAuth client id. Default "900". */
  clientId?: string;
  /** API key. Default: random. */
  clientSecret?: string;
  /** Report `expires_in` in minutes (60) like builds before 20.0.9. Default false (seconds). */
  legacyExpiresInMinutes?: boolean;
  /** Real lifetime of an access token. Default 3600. */
  tokenLifetimeSeconds?: number;
  /** Delay every response by this many milliseconds (also settable via `faults.latencyMs`). */
  latencyMs?: number;
  /** Server-side maximum page size; no cap when absent. */
  pageCap?: number;
  /** Reject a second user with the same EmailAddress (case-insensitive). Default true. */
  uniqueEmail?: boolean;
  /** Maximum phones per user before `WARNINGS.XAPI.TOO_MANY_PHONES`. Default 10. */
  maxPhonesPerUser?: number;
  /** Range for automatic extension numbers (inclusive, numeric strings). Default 100–999. */
  defaultNumberRange?: { from: string; to: string };
  /** Trunks to seed. Default: two trunks with 20 and 10 German DIDs. */
  trunks?: TrunkSeed[];
  /** Value of the `X-3CX-Version` response header. Default "20.0.10.784". */
  version?: string;
}

/** One logged HTTP request (control endpoint excluded). */
export interface RequestLogEntry {
  method: string;
  /** URL-decoded path without query, e.g. `/xapi/v1/Users(12)`. */
  path: string;
  /** Decoded query parameters (last value wins). */
  query: Record<string, string>;
  /** Parsed body: JSON value, form fields (secret redacted) or raw text; undefined when empty. */
  body: unknown;
  /** Status code sent. */
  status: number;
  /** `Date.now()` when the request arrived. */
  at: number;
}

/** A canned response served instead of the real one (see {@link FakeXapiFaults.nextResponses}). */
export interface FaultResponse {
  /** Status to send, e.g. 429, 503, 502. */
  status: number;
  /** Adds `Retry-After: <seconds>`. */
  retryAfter?: number;
  /** Send an nginx-style HTML page (`<html>…502 Bad Gateway…`) instead of JSON, as a proxy would. */
  html?: boolean;
  /** JSON body to send (default: an OData error envelope, or the HTML page when `html`). */
  body?: unknown;
  /** Only match requests with this method. */
  method?: string;
  /** Only match requests whose decoded path contains this string / matches this RegExp. */
  path?: string | RegExp;
  /** Also apply to `/connect/token` (default: only `/xapi/v1`). */
  includeToken?: boolean;
}

/** Make writes fail with an OData validation error (see {@link FakeXapiFaults.failWritesWith}). */
export interface WriteFailure {
  /** HTTP status. Default 400. */
  status?: number;
  /** Warning code. Default `WARNINGS.XAPI.NOT_SUPPORTED`. */
  code?: string;
  /** `details[0].target`. Default none. */
  target?: string;
  /** Only writes whose path contains this string / matches this RegExp. */
  path?: string | RegExp;
  /** Fail only this many writes, then clear. Default: until cleared. */
  times?: number;
}

/** Runtime fault injection. All fields are mutable. */
export interface FakeXapiFaults {
  /**
   * Canned responses consumed in order by the next matching requests (before authentication, like
   * a proxy or rate limiter in front of the PBX). A request takes the first entry that matches it.
   */
  nextResponses: FaultResponse[];
  /** When set, every matching write (non-GET, not a read-only action) fails with this error. */
  failWritesWith: WriteFailure | null;
  /** Added delay before every response, in ms. */
  latencyMs: number;
  /** Invalidate all current access tokens now (clients get 401 and must re-authenticate). */
  revokeTokens(): void;
}

/** The fake's mutable state; tests may inspect and change it directly. */
export interface FakeXapiState {
  users: Map<number, XapiUser>;
  groups: Map<number, XapiGroup>;
  trunks: Map<number, XapiTrunk>;
  /** DID → route. */
  routes: Map<string, DidRoute>;
  templates: Map<string, XapiPhoneTemplate>;
  devices: Map<number, XapiDeviceInfo>;
  /** Every `Pbx.SendWelcomeEmail` (and Regenerate with SendWelcomeEmail), in order. */
  welcomeEmails: Array<{ userId: number; number: string; email: string; at: number }>;
  /** Every `Pbx.Regenerate` / `Pbx.RegeneratePasswords`, per user. */
  regenerations: Array<{ userId: number; opts: Record<string, unknown>; at: number }>;
  /** Id of the default group. */
  defaultGroupId: number;
  /** A user that cannot be deleted (the PBX operator); unset by default. */
  operatorUserId?: number;
  /** How many access tokens have been issued. */
  tokensIssued: number;
}

/** Partial user for {@link FakeXapi.seedUser}: any `Pbx.User` fields, `Groups`/`Phones` in request form. */
export interface SeedUser {
  Id?: number;
  Number?: string;
  FirstName?: string;
  LastName?: string;
  EmailAddress?: string;
  PrimaryGroupId?: number;
  Groups?: Array<{ GroupId: number; Rights?: { RoleName: string } }>;
  Phones?: Array<{ MacAddress: string; TemplateName: string; Name?: string }>;
  /** Any other `Pbx.User` field. */
  [prop: string]: unknown;
}

/** A running fake. */
export interface FakeXapi {
  /** Base URL without trailing slash, e.g. `https://127.0.0.1:43123`. */
  url: string;
  port: number;
  clientId: string;
  clientSecret: string;
  state: FakeXapiState;
  /** Every request except the control endpoint, oldest first. */
  requests: RequestLogEntry[];
  /**
   * Number of logged write attempts: non-GET requests under `/xapi/v1`, excluding read-only actions
   * (`Defs/Pbx.GetRoutes`, `Users/Pbx.GetDuplicatedEmails`, `Users/Pbx.GetPhoneRegistrars`,
   * `Peers/Pbx.RetreivePeersByNumbers`). Failed attempts count too.
   */
  writes(): number;
  /** Clear {@link requests}. */
  resetLog(): void;
  faults: FakeXapiFaults;
  /** Create a user directly in the PBX state (no validation, no request logged). */
  seedUser(partial?: SeedUser): XapiUser;
  /** Create `count` users named "Seed<i> User<i>" with emails seed<i>@example.test. */
  seedUsers(count: number): XapiUser[];
  /** Create a department directly. */
  seedGroup(name: string, partial?: Partial<XapiGroup>): XapiGroup;
  /** Add a plug-and-play detected phone (`/DeviceInfos`). */
  seedDevice(partial: { MAC: string; Model?: string; Vendor?: string; TemplateName?: string }): XapiDeviceInfo;
  /** The currently valid access token for the client id, if any. */
  currentToken(): string | undefined;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

/** A field-level validation problem: `target` + `Pbx.Warnings` code. */
interface Problem {
  target: string;
  code: string;
}

/** Build the 3CX error envelope: message `"<Field>:\n<CODE>"` lines joined with "\n". */
export function xapiError(problems: Problem[]): { error: { code: string; message: string; details: Array<{ code: string; message: string; target: string }> } } {
  return {
    error: {
      code: '',
      message: problems.map((p) => `${p.target}:\n${p.code}`).join('\n'),
      details: problems.map((p) => ({ code: '', message: p.code, target: p.target })),
    },
  };
}

function fail(status: number, target: string, code: string): never {
  throw new HttpError(status, xapiError([{ target, code }]));
}

function failAll(problems: Problem[]): void {
  if (problems.length) throw new HttpError(400, xapiError(problems));
}

function badRequest(message: string, target?: string): never {
  throw new HttpError(400, {
    error: { code: '', message, details: target ? [{ code: '', message, target }] : [] },
  });
}

function notFound(what: string): never {
  throw new HttpError(404, {
    error: {
      code: '',
      message: `${what}:\nWARNINGS.XAPI.NOT_FOUND`,
      details: [{ code: '', message: 'WARNINGS.XAPI.NOT_FOUND', target: what }],
    },
  });
}

function randomAlnum(n: number): string {
  const chars = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  let s = '';
  for (let i = 0; i < n; i++) s += chars[randomInt(chars.length)];
  return s;
}

function randomDigits(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(randomInt(10));
  return s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pathMatches(matcher: string | RegExp | undefined, path: string): boolean {
  if (matcher === undefined) return true;
  return typeof matcher === 'string' ? path.includes(matcher) : matcher.test(path);
}

const EDM: Record<PropKind, string> = { b: 'Edm.Boolean', s: 'Edm.String', i: 'Edm.Int32', e: 'Edm.String', x: 'complex', nav: 'navigation' };

/**
 * Reject unknown properties and wrong JSON types like ASP.NET OData model binding does.
 * `@odata.*` annotations are ignored.
 */
function checkBody(typeName: string, props: Record<string, PropKind>, body: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(body)) {
    if (k.includes('@')) continue;
    const kind = props[k];
    if (!kind) {
      badRequest(
        `The property '${k}' does not exist on type '${typeName}'. Make sure to only use property names that are defined by the type or mark the type as open type.`,
        k,
      );
    }
    if (v === null) continue;
    const ok =
      kind === 'b'
        ? typeof v === 'boolean'
        : kind === 's'
          ? typeof v === 'string'
          : kind === 'i'
            ? Number.isInteger(v)
            : kind === 'e'
              ? typeof v === 'string' && (!ENUMS[k] || ENUMS[k]!.includes(v))
              : kind === 'nav'
                ? Array.isArray(v) || isPlainObject(v)
                : true;
    if (!ok) {
      const shown = typeof v === 'string' ? v : JSON.stringify(v);
      badRequest(
        kind === 'e'
          ? `The value '${shown}' is not a valid enumerated type value for property '${k}'.`
          : `Cannot convert the literal '${shown}' to the expected type '${EDM[kind]}'.`,
        k,
      );
    }
  }
}

function numericCompare(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// Entity rendering (projection with $select / $expand)
// ---------------------------------------------------------------------------------------------

interface NavDef {
  kind: string;
  /** Returns an array for collection navigation, an object or null for single navigation. */
  get(raw: unknown): unknown;
}
interface EntityDef {
  typeName: string;
  props: Record<string, PropKind>;
  /** Non-navigation view of the raw entity. */
  base(raw: unknown): Record<string, unknown>;
  nav: Record<string, NavDef>;
  /** String properties searched by `$search`. */
  search: string[];
}

// ---------------------------------------------------------------------------------------------
// The fake
// ---------------------------------------------------------------------------------------------

const READ_ONLY_ACTIONS = new Set([
  'Pbx.GetRoutes',
  'Pbx.GetDuplicatedEmails',
  'Pbx.GetPhoneRegistrars',
  'Pbx.RetreivePeersByNumbers',
]);

const DEFAULT_TRUNKS: TrunkSeed[] = [
  {
    name: 'Provider A',
    didNumbers: Array.from({ length: 20 }, (_, i) => `+493012345${String(600 + i)}`),
  },
  {
    name: 'Provider B',
    didNumbers: Array.from({ length: 10 }, (_, i) => `+498912345${String(700 + i)}`),
  },
];

function seedTemplates(): XapiPhoneTemplate[] {
  const tpl = (Id: string, vendor: string, models: string[], ua: string): XapiPhoneTemplate => ({
    Id,
    Models: models.map((m) => ({ Name: `${vendor} ${m}`, UserAgent: `${ua}${m}`, URL: '', AddAllowed: true, CanBeSBC: false })),
    TemplateType: 'Preferred',
    IsCustom: false,
    AddAllowed: true,
    HotdeskingAllowed: true,
    RpsEnabled: true,
    AllowSSLProvisioning: true,
    XferTypeEnabled: true,
    URL: '',
    Content: '',
    Languages: ['English', 'German', 'French', 'Italian', 'Spanish'],
    TimeZones: ['GMT', 'GMT+1', 'GMT+2'],
    Codecs: ['PCMA', 'PCMU', 'G722', 'G729', 'OPUS'],
    RingTones: ['Ring1.wav', 'Ring2.wav'],
    QueueRingTones: ['Ring3.wav'],
    DefaultQueueRingTone: 'Ring3.wav',
    MaxQueueCustomRingtones: 0,
    DateFormats: ['DD MMM YYYY', 'YYYY-MM-DD'],
    TimeFormats: ['12 Hour', '24 Hour'],
    BacklightTimeouts: ['Always on', '1 min'],
    ScreenSaverTimeouts: ['Off', '1 hour'],
    PowerLedSettings: ['Off', 'On'],
    AllowedNetConfigs: ['LocalLan', 'RemoteExt', 'SBC'],
  });
  return [
    tpl('yealinkT4x.ph.xml', 'Yealink', ['T42U', 'T43U', 'T46U', 'T48U', 'T54W'], 'Yealink SIP-'),
    tpl('fanvil.ph.xml', 'Fanvil', ['X3U', 'X4U', 'X6U'], 'Fanvil '),
    tpl('snomD7xx.ph.xml', 'Snom', ['D717', 'D735', 'D785'], 'snom'),
    tpl('grandstreamGRP.ph.xml', 'Grandstream', ['GRP2612', 'GRP2614', 'GRP2616'], 'Grandstream '),
    tpl('polyEdgeE.ph.xml', 'Poly', ['Edge E220', 'Edge E350', 'Edge E450'], 'PolyEdge-'),
  ];
}

/** Default rights flags per role; only `RoleName` matters to clients, the flags make the shape real. */
function rightsFor(roleName: string, given: Record<string, unknown> = {}): Record<string, unknown> {
  const rank = ROLE_NAMES.indexOf(roleName as (typeof ROLE_NAMES)[number]);
  const out: Record<string, unknown> = { RoleName: roleName };
  for (const f of RIGHTS_FLAGS) out[f] = false;
  out.ShowMyCalls = true;
  out.ShowMyPresence = true;
  out.AllowToChangePresence = true;
  if (rank >= 1) Object.assign(out, { CanSeeGroupMembers: true, AllowParking: true, PerformOperations: true });
  if (rank >= 3) Object.assign(out, { CanSeeGroupCalls: true, CanSeeGroupRecordings: true, CanBargeIn: true, CanIntercom: true });
  for (const [k, v] of Object.entries(given)) if (k !== 'RoleName' && typeof v === 'boolean') out[k] = v;
  return out;
}

/** Start the fake XAPI server. Resolves once it is listening. */
export async function startFakeXapi(options: FakeXapiOptions = {}): Promise<FakeXapi> {
  const clientId = options.clientId ?? '900';
  const clientSecret = options.clientSecret ?? randomAlnum(32);
  const tokenLifetime = options.tokenLifetimeSeconds ?? 3600;
  const uniqueEmail = options.uniqueEmail ?? true;
  const maxPhones = options.maxPhonesPerUser ?? 10;
  const range = options.defaultNumberRange ?? { from: '100', to: '999' };
  const version = options.version ?? '20.0.10.784';
  let baseUrl = '';

  let nextDnId = 10;
  let nextMembershipId = 1;
  let nextPhoneId = 1;
  let nextRuleId = 1;
  let nextDeviceId = 1;

  const state: FakeXapiState = {
    users: new Map(),
    groups: new Map(),
    trunks: new Map(),
    routes: new Map(),
    templates: new Map(seedTemplates().map((t) => [t.Id, t])),
    devices: new Map(),
    welcomeEmails: [],
    regenerations: [],
    defaultGroupId: 0,
    tokensIssued: 0,
  };
  const requests: RequestLogEntry[] = [];

  // token → { clientId, expiresAt }; per client only the newest token is valid.
  const tokens = new Map<string, { clientId: string; expiresAt: number }>();
  const currentTokenByClient = new Map<string, string>();

  const faults: FakeXapiFaults = {
    nextResponses: [],
    failWritesWith: null,
    latencyMs: options.latencyMs ?? 0,
    revokeTokens() {
      tokens.clear();
      currentTokenByClient.clear();
    },
  };

  // ----- groups -----------------------------------------------------------------------------
  const newGroup = (name: string, number: string, isDefault: boolean, partial: Partial<XapiGroup> = {}): XapiGroup => {
    const g: XapiGroup = {
      Id: nextDnId++,
      Number: number,
      Name: name,
      IsDefault: isDefault,
      Language: 'EN',
      TimeZoneId: '51',
      PromptSet: '8210986B-9412-497f-AD77-3A554F4A9BDB',
      AllowCallService: true,
      AnswerAfter: 0,
      GloballyVisible: false,
      DisableCustomPrompt: true,
      CustomPrompt: '',
      MusicOnHold: '',
      OverrideHolidays: false,
      TranscriptionMode: 'Inherit',
      CallUsEnableChat: false,
      CallUsEnablePhone: false,
      CallUsEnableVideo: false,
      CallUsRequirement: 'Both',
      ClickToCallId: '',
      CallHandlingMode: [],
      Hours: { Type: 'AllHours', Periods: [], IgnoreHolidays: false },
      BreakTime: { Type: 'BreakTime', Periods: [], IgnoreHolidays: false },
      Props: { UserNumberFrom: range.from, UserNumberTo: range.to },
      ...partial,
    };
    g.Id = (partial.Id as number | undefined) ?? g.Id;
    state.groups.set(g.Id, g);
    return g;
  };
  const defaultGroup = newGroup('DEFAULT', 'GRP0000', true);
  state.defaultGroupId = defaultGroup.Id;

  const nextGroupNumber = (): string => {
    const used = new Set([...state.groups.values()].map((g) => g.Number));
    for (let i = 1; ; i++) {
      const n = `GRP${String(i).padStart(4, '0')}`;
      if (!used.has(n)) return n;
    }
  };

  // ----- trunks -----------------------------------------------------------------------------
  (options.trunks ?? DEFAULT_TRUNKS).forEach((t, i) => {
    const trunk: XapiTrunk = {
      Id: nextDnId++,
      Number: t.number ?? String(10000 + i),
      DidNumbers: [...t.didNumbers],
      Gateway: { Name: t.name, Type: 'Provider', Host: `sip${i + 1}.provider.test`, Port: 5060 },
      Direction: 'Both',
      EnableInboundCalls: true,
      EnableOutboundCalls: true,
      ExternalNumber: t.didNumbers[0] ?? '',
      OutboundCallerID: t.didNumbers[0] ?? '',
      IsOnline: true,
      SimultaneousCalls: 10,
      TranscriptionMode: 'Inherit',
      Tags: [],
    };
    state.trunks.set(trunk.Id, trunk);
  });

  // ----- DN numbers -------------------------------------------------------------------------
  const numberOwner = (num: string): { kind: string; id: number } | undefined => {
    for (const u of state.users.values()) if (u.Number === num) return { kind: 'user', id: u.Id };
    for (const g of state.groups.values()) if (g.Number === num) return { kind: 'group', id: g.Id };
    for (const t of state.trunks.values()) if (t.Number === num) return { kind: 'trunk', id: t.Id };
    return undefined;
  };
  const usedNumbers = (): Set<string> => {
    const s = new Set<string>(EMERGENCY_NUMBERS);
    for (const u of state.users.values()) s.add(u.Number);
    for (const g of state.groups.values()) s.add(g.Number);
    for (const t of state.trunks.values()) s.add(t.Number);
    return s;
  };
  const firstFreeNumber = (used: Set<string> = usedNumbers()): string | undefined => {
    const from = Number(range.from);
    const to = Number(range.to);
    const width = range.from.length;
    for (let n = from; n <= to; n++) {
      const s = String(n).padStart(width, '0');
      if (!used.has(s)) return s;
    }
    return undefined;
  };

  // ----- users ------------------------------------------------------------------------------
  const slug = (u: { FirstName?: unknown; LastName?: unknown }, number: string): string => {
    const s = `${String(u.FirstName ?? '')}${String(u.LastName ?? '')}`.toLowerCase().replace(/[^a-z0-9]/g, '');
    return s ? `${s}${number}` : `ext${number}`;
  };

  /** A user as the admin console / XAPI create it when only Id and Number are known. */
  const defaultUser = (id: number, number: string): XapiUser => ({
    Id: id,
    Number: number,
    FirstName: '',
    LastName: '',
    DisplayName: '',
    EmailAddress: '',
    Mobile: '',
    OutboundCallerID: '',
    Language: '',
    ContactImage: '',
    Enabled: true,
    Internal: false,
    HideInPhonebook: false,
    IsRegistered: false,
    CurrentProfileName: 'Available',
    QueueStatus: 'LoggedOut',
    Tags: [],
    AIAgent: false,
    AccessPassword: randomAlnum(10),
    AuthID: randomAlnum(10),
    AuthPassword: randomAlnum(10),
    DeskphonePassword: randomAlnum(10),
    SIPID: '',
    Require2FA: false,
    Enable2FA: false,
    VMEnabled: true,
    VMPIN: randomDigits(6),
    VMDisablePinAuth: false,
    VMPlayCallerID: false,
    VMPlayMsgDateTime: 'None',
    VMEmailOptions: 'Notification',
    SendEmailMissedCalls: true,
    RecordEmailNotify: false,
    RecordCalls: false,
    RecordExternalCallsOnly: false,
    AllowOwnRecordings: false,
    ForbidRecording: false,
    MyPhoneShowRecordings: false,
    MyPhoneAllowDeleteRecordings: false,
    MyPhoneHideForwardings: false,
    MyPhonePush: true,
    MS365CalendarEnabled: true,
    MS365ContactsEnabled: true,
    MS365SignInEnabled: true,
    MS365TeamsEnabled: true,
    GoogleCalendarEnabled: false,
    GoogleContactsEnabled: false,
    GoogleSignInEnabled: true,
    DatevEnabled: false,
    WebMeetingFriendlyName: '',
    WebMeetingApproveParticipants: false,
    AllowLanOnly: true,
    BlockTunnel: false,
    PbxDeliversAudio: false,
    SRTPMode: 'SRTPDisabled',
    PinProtected: false,
    PinProtectTimeout: 0,
    CallScreening: false,
    EnableHotdesking: false,
    HotdeskingAssignment: '',
    PrimaryGroupId: state.defaultGroupId,
    Hours: { Type: 'OfficeHours', Periods: [], IgnoreHolidays: false },
    BreakTime: { Type: 'OfficeHours', Periods: [], IgnoreHolidays: false },
    OfficeHoursProps: [],
    Blfs: '<PhoneDevice><BLFS/></PhoneDevice>',
    PromptSet: '8210986B-9412-497f-AD77-3A554F4A9BDB',
    AgentSettings: null,
    EmergencyLocationId: '',
    EmergencyAdditionalInfo: '',
    TranscriptionMode: 'Inherit',
    CallUsEnableChat: true,
    CallUsEnablePhone: false,
    CallUsEnableVideo: false,
    CallUsRequirement: 'Both',
    ClickToCallId: '',
    Groups: [],
    Phones: [],
    ForwardingProfiles: ['Available', 'Away', 'Out of office', 'Custom 1', 'Custom 2'].map((Name, i) => ({ Id: i + 1, Name })),
    ForwardingExceptions: [],
    Greetings: [{ Type: 'Default', Filename: '', DisplayName: '' }],
  });

  const displayNameOf = (u: { FirstName?: unknown; LastName?: unknown }): string =>
    `${String(u.FirstName ?? '')} ${String(u.LastName ?? '')}`.trim();

  const makePhone = (mac: string, templateName: string, name: string | undefined, prev?: XapiPhone, settings?: Record<string, unknown>): XapiPhone => {
    const key = randomAlnum(12);
    const tpl = state.templates.get(templateName);
    return {
      Id: prev?.Id ?? nextPhoneId++,
      MacAddress: mac,
      TemplateName: templateName,
      Name: name ?? prev?.Name ?? tpl?.Models[0]?.Name ?? '',
      Interface: prev?.Interface ?? '',
      ProvisioningLinkExt: prev?.ProvisioningLinkExt ?? `${baseUrl}/provisioning/${key}/${mac}.xml`,
      ProvisioningLinkLocal: prev?.ProvisioningLinkLocal ?? `http://127.0.0.1:5000/provisioning/${key}/${mac}.xml`,
      Settings: {
        ProvisionType: 'LocalLan',
        IsSBC: false,
        Codecs: ['G722', 'PCMA', 'PCMU'],
        XferType: 'BXfer',
        LocalSipPort: 5060,
        LocalRTPPortStart: 12000,
        LocalRTPPortEnd: 12200,
        PhoneLanguage: 'English',
        TimeZone: 'GMT+1',
        ...(prev?.Settings ?? {}),
        ...(settings ?? {}),
        Secret: (prev?.Settings.Secret as string | undefined) ?? randomAlnum(16),
      },
    };
  };

  const macOwner = (mac: string): XapiUser | undefined => {
    for (const u of state.users.values()) if (u.Phones.some((p) => p.MacAddress === mac)) return u;
    return undefined;
  };

  /** Validate a `Groups` list from a request body into stored memberships. */
  const validateGroups = (value: unknown, existing: StoredMembership[], problems: Problem[]): StoredMembership[] | undefined => {
    if (!Array.isArray(value)) {
      problems.push({ target: 'Groups', code: 'WARNINGS.INVALID' });
      return undefined;
    }
    const seen = new Set<number>();
    const out: StoredMembership[] = [];
    for (const item of value) {
      if (!isPlainObject(item)) {
        problems.push({ target: 'Groups', code: 'WARNINGS.INVALID' });
        continue;
      }
      const gid = item.GroupId;
      if (!Number.isInteger(gid) || !state.groups.has(gid as number)) {
        problems.push({ target: 'Groups', code: 'WARNINGS.XAPI.NOT_FOUND' });
        continue;
      }
      if (seen.has(gid as number)) {
        problems.push({ target: 'Groups', code: 'WARNINGS.XAPI.DUPLICATE' });
        continue;
      }
      seen.add(gid as number);
      const rights = isPlainObject(item.Rights) ? item.Rights : {};
      const role = rights.RoleName ?? 'users';
      if (typeof role !== 'string' || !(ROLE_NAMES as readonly string[]).includes(role)) {
        problems.push({ target: 'RoleName', code: 'WARNINGS.XAPI.NOT_FOUND' });
        continue;
      }
      const prev = existing.find((m) => m.GroupId === gid);
      const flags: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(rights)) if (k !== 'RoleName' && typeof v === 'boolean') flags[k] = v;
      out.push({ Id: prev?.Id ?? nextMembershipId++, GroupId: gid as number, Rights: { ...flags, RoleName: role } });
    }
    return out;
  };

  /** Validate a `Phones` list from a request body (replace semantics) for user `self`. */
  const validatePhones = (value: unknown, self: XapiUser | undefined, problems: Problem[]): XapiPhone[] | undefined => {
    if (!Array.isArray(value)) {
      problems.push({ target: 'Phones', code: 'WARNINGS.INVALID' });
      return undefined;
    }
    if (value.length > maxPhones) {
      problems.push({ target: 'Phones', code: 'WARNINGS.XAPI.TOO_MANY_PHONES' });
      return undefined;
    }
    const seen = new Set<string>();
    const out: XapiPhone[] = [];
    for (const item of value) {
      if (!isPlainObject(item)) {
        problems.push({ target: 'Phones', code: 'WARNINGS.INVALID' });
        continue;
      }
      const mac = item.MacAddress;
      if (typeof mac !== 'string' || !/^[0-9a-fA-F]{12}$/.test(mac)) {
        problems.push({ target: 'Phones', code: 'WARNINGS.INVALID_HEX_CHARACTER' });
        continue;
      }
      const lower = mac.toLowerCase();
      if (seen.has(lower)) {
        problems.push({ target: 'Phones', code: 'WARNINGS.MAC_ADDRESS_ALREADY_IN_USE' });
        continue;
      }
      seen.add(lower);
      const owner = macOwner(lower);
      if (owner && owner.Id !== self?.Id) {
        problems.push({ target: 'Phones', code: 'WARNINGS.XAPI.MAC_USED_BY' });
        continue;
      }
      const tplName = item.TemplateName;
      if (typeof tplName !== 'string' || !state.templates.has(tplName)) {
        problems.push({ target: 'Phones', code: 'WARNINGS.XAPI.NOT_FOUND' });
        continue;
      }
      const prev = self?.Phones.find((p) => p.MacAddress === lower);
      const settings = isPlainObject(item.Settings) ? item.Settings : undefined;
      out.push(makePhone(lower, tplName, typeof item.Name === 'string' ? item.Name : undefined, prev, settings));
    }
    return out;
  };

  /**
   * Validate a user create (self undefined) or patch body and return the fields to apply.
   * Throws HttpError 400 with all problems found.
   */
  const validateUserBody = (body: Record<string, unknown>, self: XapiUser | undefined): Record<string, unknown> => {
    checkBody('Pbx.User', USER_PROPS, body);
    const problems: Problem[] = [];
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(body)) {
      if (k.includes('@') || k === 'Id' || k === 'IsRegistered') continue;
      out[k] = v;
    }

    // Number
    if (self) {
      if ('Number' in out && out.Number !== null && out.Number !== self.Number) {
        problems.push({ target: 'Number', code: 'WARNINGS.XAPI.FORBIDDEN_CHANGE' });
      }
      delete out.Number;
    } else if (out.Number === null || out.Number === undefined) {
      delete out.Number;
    } else {
      const num = out.Number as string;
      if (num === '') problems.push({ target: 'Number', code: 'WARNINGS.XAPI.CAN_NOT_BE_EMPTY_STRING' });
      else if (!/^\d+$/.test(num)) problems.push({ target: 'Number', code: 'WARNINGS.INVALID' });
      else if (EMERGENCY_NUMBERS.includes(num) || numberOwner(num)) {
        problems.push({ target: 'Number', code: 'WARNINGS.XAPI.ALREADY_IN_USE' });
      }
    }

    for (const f of ['FirstName', 'LastName']) {
      if (typeof out[f] === 'string' && (out[f] as string).length > 50) {
        problems.push({ target: f, code: 'WARNINGS.LENGTH_NOT_MORE_50_CHARS' });
      }
    }
    for (const f of ['DisplayName', 'Mobile', 'OutboundCallerID']) {
      if (typeof out[f] === 'string' && (out[f] as string).length > 255) {
        problems.push({ target: f, code: 'WARNINGS.LENGTH_NOT_MORE_255_CHARS' });
      }
    }

    if (typeof out.EmailAddress === 'string') {
      const email = out.EmailAddress;
      if (email.length > 255) problems.push({ target: 'EmailAddress', code: 'WARNINGS.LENGTH_NOT_MORE_255_CHARS' });
      else if (uniqueEmail && email !== '') {
        const lower = email.toLowerCase();
        for (const u of state.users.values()) {
          if (u.Id !== self?.Id && typeof u.EmailAddress === 'string' && u.EmailAddress.toLowerCase() === lower) {
            problems.push({ target: 'EmailAddress', code: 'WARNINGS.XAPI.ALREADY_IN_USE' });
            break;
          }
        }
      }
    }

    if ('VMPIN' in out && out.VMPIN !== null) {
      if (!/^\d{4,20}$/.test(out.VMPIN as string)) problems.push({ target: 'VMPIN', code: 'WARNINGS.XAPI.INVALID_PIN_NUMBER' });
    } else {
      delete out.VMPIN;
    }

    if (Array.isArray(out.Tags) && out.Tags.some((t) => !USER_TAGS.includes(t as string))) {
      problems.push({ target: 'Tags', code: 'WARNINGS.INVALID' });
    }

    if ('Groups' in out) {
      if (out.Groups === null) delete out.Groups;
      else {
        const g = validateGroups(out.Groups, self?.Groups ?? [], problems);
        if (g) out.Groups = g;
      }
    }
    if ('PrimaryGroupId' in out && out.PrimaryGroupId !== null && !state.groups.has(out.PrimaryGroupId as number)) {
      problems.push({ target: 'PrimaryGroupId', code: 'WARNINGS.XAPI.NOT_FOUND' });
    }
    if ('Phones' in out) {
      if (out.Phones === null) delete out.Phones;
      else {
        const p = validatePhones(out.Phones, self, problems);
        if (p) out.Phones = p;
      }
    }
    failAll(problems);
    return out;
  };

  /** Apply defaults and validated fields for a new user. */
  const insertUser = (fields: Record<string, unknown>, number: string): XapiUser => {
    const u = defaultUser(nextDnId++, number);
    Object.assign(u, fields, { Number: number });
    if (!fields.Groups) u.Groups = [{ Id: nextMembershipId++, GroupId: state.defaultGroupId, Rights: { RoleName: 'users' } }];
    if (fields.PrimaryGroupId === undefined || fields.PrimaryGroupId === null) {
      u.PrimaryGroupId = u.Groups[0]?.GroupId ?? state.defaultGroupId;
    }
    if (fields.DisplayName === undefined || fields.DisplayName === null) u.DisplayName = displayNameOf(u);
    if (!fields.ClickToCallId) u.ClickToCallId = slug(u, number);
    if (!fields.WebMeetingFriendlyName) u.WebMeetingFriendlyName = slug(u, number);
    state.users.set(u.Id, u);
    return u;
  };

  const createUser = (body: Record<string, unknown>): XapiUser => {
    const fields = validateUserBody(body, undefined);
    let number = fields.Number as string | undefined;
    if (number === undefined) {
      number = firstFreeNumber();
      if (number === undefined) fail(400, 'Number', 'WARNINGS.NO_MORE_NUMBERS_AVAILABLE');
    }
    return insertUser(fields, number);
  };

  const patchUser = (u: XapiUser, body: Record<string, unknown>): void => {
    const fields = validateUserBody(body, u);
    const oldDisplay = displayNameOf(u);
    const displayWasDerived = u.DisplayName === oldDisplay;
    Object.assign(u, fields);
    if (fields.DisplayName === undefined && displayWasDerived) u.DisplayName = displayNameOf(u);
    if (fields.Groups && fields.PrimaryGroupId === undefined) {
      const groups = u.Groups;
      if (groups.length && !groups.some((m) => m.GroupId === u.PrimaryGroupId)) u.PrimaryGroupId = groups[0]!.GroupId;
    }
  };

  const deleteUserChecked = (id: number): string | undefined => {
    const u = state.users.get(id);
    if (!u) return 'WARNINGS.XAPI.NOT_FOUND';
    if (state.operatorUserId === id) return 'WARNINGS.OPERATOR_CANNOT_BE_DELETED';
    state.users.delete(id);
    for (const [did, r] of state.routes) if (r.DnId === id) state.routes.delete(did);
    return undefined;
  };

  const seedUser = (partial: SeedUser = {}): XapiUser => {
    const { Groups, Phones, ...rest } = partial;
    const number = partial.Number ?? firstFreeNumber();
    if (number === undefined) throw new Error('fake XAPI: no free extension number in range');
    const u = insertUser(rest as Record<string, unknown>, number);
    if (partial.Id !== undefined) {
      state.users.delete(u.Id);
      u.Id = partial.Id;
      state.users.set(u.Id, u);
      nextDnId = Math.max(nextDnId, u.Id + 1);
    }
    if (Groups) {
      u.Groups = Groups.map((g) => ({ Id: nextMembershipId++, GroupId: g.GroupId, Rights: { RoleName: g.Rights?.RoleName ?? 'users' } }));
      if (partial.PrimaryGroupId === undefined) u.PrimaryGroupId = u.Groups[0]?.GroupId ?? state.defaultGroupId;
    }
    if (Phones) u.Phones = Phones.map((p) => makePhone(p.MacAddress.toLowerCase(), p.TemplateName, p.Name));
    return u;
  };

  const seedUsers = (count: number): XapiUser[] => {
    const used = usedNumbers();
    const out: XapiUser[] = [];
    for (let i = 0; i < count; i++) {
      const number = firstFreeNumber(used);
      if (number === undefined) throw new Error('fake XAPI: no free extension number in range');
      used.add(number);
      const n = state.users.size + 1;
      out.push(insertUser({ FirstName: `Seed${n}`, LastName: `User${n}`, EmailAddress: `seed${n}.${number}@example.test` }, number));
    }
    return out;
  };

  // ----- groups: membership helpers ----------------------------------------------------------
  const membersOf = (gid: number): Array<{ user: XapiUser; m: StoredMembership }> => {
    const out: Array<{ user: XapiUser; m: StoredMembership }> = [];
    for (const user of state.users.values()) {
      const m = user.Groups.find((x) => x.GroupId === gid);
      if (m) out.push({ user, m });
    }
    return out;
  };

  const deleteGroupChecked = (id: number): void => {
    const g = state.groups.get(id);
    if (!g) notFound('Id');
    if (g.IsDefault) fail(400, 'Id', 'WARNINGS.GROUP_CANNOT_BE_DELETED');
    if (membersOf(id).length) fail(400, 'Id', 'WARNINGS.GROUP_WITH_MEMBERS_CANNOT_BE_DELETED');
    state.groups.delete(id);
  };

  // ----- rendering -------------------------------------------------------------------------
  const stripNav = (raw: Record<string, unknown>, props: Record<string, PropKind>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) if (props[k] && props[k] !== 'nav') out[k] = v;
    return out;
  };

  type UGRaw = { view: Record<string, unknown>; rights: Record<string, unknown> };
  const userGroupRaw = (u: XapiUser, m: StoredMembership, groupSide: boolean): UGRaw => {
    const g = state.groups.get(m.GroupId);
    return {
      view: {
        Id: m.Id,
        GroupId: m.GroupId,
        Name: groupSide ? (u.DisplayName as string) : (g?.Name ?? ''),
        Number: groupSide ? u.Number : (g?.Number ?? ''),
        MemberName: u.DisplayName,
        CanDelete: !g?.IsDefault,
        Type: 'Extension',
        Tags: [],
        TranscriptionMode: 'Inherit',
      },
      rights: rightsFor(m.Rights.RoleName, m.Rights),
    };
  };

  const peerOf = (id: number): Record<string, unknown> | null => {
    const u = state.users.get(id);
    if (u) return { Id: u.Id, Number: u.Number, Name: u.DisplayName, Type: 'Extension', Hidden: false, Tags: [] };
    const g = state.groups.get(id);
    if (g) return { Id: g.Id, Number: g.Number, Name: g.Name, Type: 'Group', Hidden: false, Tags: [] };
    const t = state.trunks.get(id);
    if (t) return { Id: t.Id, Number: t.Number, Name: t.Gateway.Name, Type: 'ExternalLine', Hidden: false, Tags: [] };
    return null;
  };
  const allPeers = (): Array<Record<string, unknown>> =>
    [...state.users.keys(), ...state.groups.keys(), ...state.trunks.keys()].map((id) => peerOf(id)!);

  type DidRaw = { did: string; trunk: XapiTrunk };
  const inboundRuleOf = (did: string, trunk: XapiTrunk): Record<string, unknown> | null => {
    const r = state.routes.get(did);
    if (!r) return null;
    const dest = peerOf(r.DnId);
    const destination = {
      To: 'Extension',
      Number: dest?.Number ?? '',
      Name: dest?.Name ?? '',
      External: '',
      Type: dest?.Type ?? 'None',
      Tags: [],
    };
    return {
      Id: r.RuleId,
      RuleName: r.DisplayName || did,
      Data: did,
      Condition: 'BasedOnDID',
      CallType: 'AllCalls',
      CustomData: '',
      OfficeHoursDestination: destination,
      OutOfOfficeHoursDestination: destination,
      HolidaysDestination: destination,
      AlterDestinationDuringHolidays: false,
      AlterDestinationDuringOutOfOfficeHours: false,
      Hours: { Type: 'AllHours', Periods: [], IgnoreHolidays: false },
      __trunk: trunk.Id,
    };
  };

  const plain = (typeName: string, props: Record<string, PropKind>, search: string[] = []): EntityDef => ({
    typeName,
    props,
    base: (raw) => stripNav(raw as Record<string, unknown>, props),
    nav: {},
    search,
  });

  const defs: Record<string, EntityDef> = {
    User: {
      typeName: 'Pbx.User',
      props: USER_PROPS,
      base: (raw) => stripNav(raw as Record<string, unknown>, USER_PROPS),
      nav: {
        Groups: { kind: 'UserGroup', get: (raw) => (raw as XapiUser).Groups.map((m) => userGroupRaw(raw as XapiUser, m, false)) },
        Phones: { kind: 'Phone', get: (raw) => (raw as XapiUser).Phones },
        ForwardingProfiles: { kind: 'Any', get: (raw) => (raw as XapiUser).ForwardingProfiles },
        ForwardingExceptions: { kind: 'Any', get: (raw) => (raw as XapiUser).ForwardingExceptions },
        Greetings: { kind: 'Any', get: (raw) => (raw as XapiUser).Greetings },
      },
      search: ['FirstName', 'LastName', 'Number', 'EmailAddress', 'DisplayName', 'Mobile'],
    },
    UserGroup: {
      typeName: 'Pbx.UserGroup',
      props: USERGROUP_PROPS,
      base: (raw) => ({ ...(raw as UGRaw).view }),
      nav: {
        Rights: { kind: 'Rights', get: (raw) => (raw as UGRaw).rights },
        GroupRights: { kind: 'Rights', get: (raw) => (raw as UGRaw).rights },
      },
      search: ['Name', 'Number'],
    },
    Rights: plain('Pbx.Rights', RIGHTS_PROPS),
    Phone: plain('Pbx.Phone', PHONE_PROPS, ['MacAddress', 'Name']),
    Group: {
      typeName: 'Pbx.Group',
      props: GROUP_PROPS,
      base: (raw) => ({ ...stripNav(raw as Record<string, unknown>, GROUP_PROPS), HasMembers: membersOf((raw as XapiGroup).Id).length > 0 }),
      nav: {
        Members: { kind: 'UserGroup', get: (raw) => membersOf((raw as XapiGroup).Id).map(({ user, m }) => userGroupRaw(user, m, true)) },
        Rights: { kind: 'Rights', get: () => ROLE_NAMES.map((r) => rightsFor(r)) },
        Groups: { kind: 'Any', get: () => [] },
        OfficeHolidays: { kind: 'Any', get: () => [] },
      },
      search: ['Name', 'Number'],
    },
    Trunk: {
      typeName: 'Pbx.Trunk',
      props: TRUNK_PROPS,
      base: (raw) => stripNav(raw as Record<string, unknown>, TRUNK_PROPS),
      nav: {
        Groups: { kind: 'Any', get: () => [] },
        EmergencyGeoLocations: { kind: 'Any', get: () => [] },
        ReceiveExtensions: { kind: 'Any', get: () => [] },
        RoutingRules: {
          kind: 'InboundRule',
          get: (raw) => (raw as XapiTrunk).DidNumbers.map((d) => inboundRuleOf(d, raw as XapiTrunk)).filter((x) => x !== null),
        },
      },
      search: ['Number'],
    },
    DidNumber: {
      typeName: 'Pbx.DidNumber',
      props: DIDNUMBER_PROPS,
      base: (raw) => ({ Number: (raw as DidRaw).did, TrunkId: (raw as DidRaw).trunk.Id, TemplateFileName: null }),
      nav: { RoutingRule: { kind: 'InboundRule', get: (raw) => inboundRuleOf((raw as DidRaw).did, (raw as DidRaw).trunk) } },
      search: ['Number'],
    },
    InboundRule: {
      typeName: 'Pbx.InboundRule',
      props: INBOUNDRULE_PROPS,
      base: (raw) => stripNav(raw as Record<string, unknown>, INBOUNDRULE_PROPS),
      nav: { TrunkDN: { kind: 'Any', get: (raw) => peerOf((raw as { __trunk: number }).__trunk) } },
      search: ['Data', 'RuleName'],
    },
    Peer: {
      typeName: 'Pbx.Peer',
      props: PEER_PROPS,
      base: (raw) => stripNav(raw as Record<string, unknown>, PEER_PROPS),
      nav: { MemberOf: { kind: 'Any', get: () => [] } },
      search: ['Name', 'Number'],
    },
    PhoneTemplate: plain('Pbx.PhoneTemplate', TEMPLATE_PROPS, ['Id']),
    DeviceInfo: {
      typeName: 'Pbx.DeviceInfo',
      props: DEVICEINFO_PROPS,
      base: (raw) => {
        const d = raw as XapiDeviceInfo;
        const owner = macOwner(d.MAC);
        return { ...stripNav(d, DEVICEINFO_PROPS), Assigned: !!owner, AssignedUser: owner?.Number ?? '' };
      },
      nav: {},
      search: ['MAC', 'Model', 'Vendor'],
    },
    Any: { typeName: 'Edm.Untyped', props: {}, base: (raw) => ({ ...(raw as Record<string, unknown>) }), nav: {}, search: [] },
  };

  const validateNames = (def: EntityDef, opts: QueryOptions): void => {
    if (def.typeName === 'Edm.Untyped') return;
    const check = (name: string): void => {
      if (!def.props[name]) throw new ODataQueryError(`Could not find a property named '${name}' on type '${def.typeName}'.`);
    };
    opts.select?.forEach((s) => s !== '*' && check(s));
    if (opts.filter) filterProperties(opts.filter).forEach(check);
    opts.orderby?.forEach((o) => check(o.path[0]!));
    for (const [name, sub] of opts.expand) {
      const nav = def.nav[name];
      if (!nav) throw new ODataQueryError(`Could not find a property named '${name}' on type '${def.typeName}'.`);
      validateNames(defs[nav.kind]!, sub);
    }
  };

  const project = (kind: string, raw: unknown, opts: QueryOptions): Record<string, unknown> => {
    const def = defs[kind]!;
    const base = def.base(raw);
    let out: Record<string, unknown>;
    if (opts.select && !opts.select.includes('*')) {
      out = {};
      for (const s of opts.select) if (s in base) out[s] = base[s];
    } else out = base;
    for (const [name, sub] of opts.expand) {
      const nav = def.nav[name]!;
      const v = nav.get(raw);
      out[name] = Array.isArray(v) ? collection(nav.kind, v, sub, false).rows : v === null ? null : project(nav.kind, v, sub);
    }
    return out;
  };

  /** Filter, count, order, page and project raw rows of one kind. */
  const collection = (
    kind: string,
    raws: unknown[],
    opts: QueryOptions,
    topLevel: boolean,
  ): { rows: Array<Record<string, unknown>>; count: number } => {
    const def = defs[kind]!;
    let items = raws.map((raw) => ({ raw, base: def.base(raw) }));
    if (opts.filter) {
      const navInFilter = [...filterProperties(opts.filter)].filter((p) => def.nav[p]);
      items = items.filter(({ raw, base }) => {
        let row = base;
        if (navInFilter.length) {
          row = { ...base };
          for (const p of navInFilter) {
            const v = def.nav[p]!.get(raw);
            row[p] = v === null || Array.isArray(v) ? v : defs[def.nav[p]!.kind]!.base(v);
          }
        }
        return matchesFilter(opts.filter!, row);
      });
    }
    if (opts.search) {
      const needle = opts.search.replace(/^"|"$/g, '').toLowerCase();
      items = items.filter(({ base }) => def.search.some((f) => typeof base[f] === 'string' && (base[f] as string).toLowerCase().includes(needle)));
    }
    const count = items.length;
    if (opts.orderby) {
      const keyed = items.map((it) => ({ ...it.base, __it: it }));
      sortRows(keyed, opts.orderby);
      items = keyed.map((k) => k.__it as (typeof items)[number]);
    }
    const skip = opts.skip ?? 0;
    let top = opts.top;
    if (topLevel && options.pageCap !== undefined) top = Math.min(top ?? options.pageCap, options.pageCap);
    items = items.slice(skip, top === undefined ? undefined : skip + top);
    return { rows: items.map(({ raw }) => project(kind, raw, opts)), count };
  };

  const contextUrl = (fragment: string): string => `${baseUrl}/xapi/v1/$metadata#${fragment}`;

  const sendCollection = (kind: string, setName: string, raws: unknown[], q: Record<string, string>): unknown => {
    const opts = parseQueryOptions(q);
    validateNames(defs[kind]!, opts);
    const { rows, count } = collection(kind, raws, opts, true);
    const sel = opts.select ? `(${opts.select.join(',')})` : '';
    const out: Record<string, unknown> = { '@odata.context': contextUrl(`${setName}${sel}`) };
    if (opts.count) out['@odata.count'] = count;
    out.value = rows;
    return out;
  };

  const sendEntity = (kind: string, setName: string, raw: unknown, q: Record<string, string>): unknown => {
    const opts = parseQueryOptions(q);
    for (const k of ['$filter', '$top', '$skip', '$orderby', '$count', '$search']) {
      if (k in q) throw new ODataQueryError(`The query option '${k}' is not allowed on a single entity.`);
    }
    validateNames(defs[kind]!, opts);
    const sel = opts.select ? `(${opts.select.join(',')})` : '';
    return { '@odata.context': contextUrl(`${setName}${sel}/$entity`), ...project(kind, raw, opts) };
  };

  // ----- DIDs ------------------------------------------------------------------------------
  const trunkOfDid = (did: string): XapiTrunk | undefined => {
    for (const t of state.trunks.values()) if (t.DidNumbers.includes(did)) return t;
    return undefined;
  };

  const setRoutes = (body: Record<string, unknown>): void => {
    const req = body.routes;
    if (!isPlainObject(req)) badRequest('routes: the parameter is required', 'routes');
    const dnId = req.Id;
    if (!Number.isInteger(dnId) || !peerOf(dnId as number)) fail(400, 'Id', 'WARNINGS.XAPI.NOT_FOUND');
    const list = req.Routes ?? [];
    if (!Array.isArray(list)) badRequest('Routes must be an array', 'Routes');
    const problems: Problem[] = [];
    const next: Array<{ did: string; trunkId: number; name: string | null }> = [];
    const seen = new Set<string>();
    for (const r of list) {
      if (!isPlainObject(r) || typeof r.DID !== 'string') {
        problems.push({ target: 'DID', code: 'WARNINGS.XAPI.REQUIRED' });
        continue;
      }
      const trunk = trunkOfDid(r.DID);
      const wanted = r.TrunkId;
      if (!trunk || (Number.isInteger(wanted) && wanted !== 0 && wanted !== trunk.Id)) {
        problems.push({ target: 'DID', code: 'WARNINGS.XAPI.NOT_FOUND' });
        continue;
      }
      if (seen.has(r.DID)) continue;
      seen.add(r.DID);
      next.push({ did: r.DID, trunkId: trunk.Id, name: typeof r.DisplayName === 'string' ? r.DisplayName : null });
    }
    failAll(problems);
    for (const [did, r] of state.routes) if (r.DnId === dnId) state.routes.delete(did);
    for (const n of next) {
      const prev = state.routes.get(n.did);
      state.routes.set(n.did, { DnId: dnId as number, TrunkId: n.trunkId, DisplayName: n.name, RuleId: prev?.RuleId ?? nextRuleId++ });
    }
  };

  const routesOf = (dnId: number): Array<Record<string, unknown>> => {
    const out: Array<Record<string, unknown>> = [];
    for (const [did, r] of state.routes) if (r.DnId === dnId) out.push({ DID: did, DisplayName: r.DisplayName, TrunkId: r.TrunkId });
    return out;
  };

  const patchTrunk = (t: XapiTrunk, body: Record<string, unknown>): void => {
    checkBody('Pbx.Trunk', TRUNK_PROPS, body);
    if ('Number' in body && body.Number !== null && body.Number !== t.Number) fail(400, 'Number', 'WARNINGS.XAPI.FORBIDDEN_CHANGE');
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(body)) if (!k.includes('@') && k !== 'Id' && k !== 'Number') fields[k] = v;
    if ('DidNumbers' in fields) {
      const dids = fields.DidNumbers;
      if (!Array.isArray(dids) || dids.some((d) => typeof d !== 'string' || d === '')) badRequest('DidNumbers must be a list of strings', 'DidNumbers');
      for (const d of dids as string[]) {
        const owner = trunkOfDid(d);
        if (owner && owner.Id !== t.Id) fail(400, 'DidNumbers', 'WARNINGS.XAPI.ALREADY_IN_USE');
      }
      const keep = new Set(dids as string[]);
      for (const d of t.DidNumbers) if (!keep.has(d)) state.routes.delete(d);
      fields.DidNumbers = [...keep];
    }
    Object.assign(t, fields);
  };

  // ----- groups CRUD -------------------------------------------------------------------------
  const applyGroupMembers = (g: XapiGroup, members: unknown): void => {
    if (!Array.isArray(members)) badRequest('Members must be an array', 'Members');
    const problems: Problem[] = [];
    const wanted = new Map<number, string>();
    for (const m of members) {
      if (!isPlainObject(m)) {
        problems.push({ target: 'Members', code: 'WARNINGS.INVALID' });
        continue;
      }
      const user = typeof m.Number === 'string' ? [...state.users.values()].find((u) => u.Number === m.Number) : Number.isInteger(m.Id) ? state.users.get(m.Id as number) : undefined;
      if (!user) {
        problems.push({ target: 'Members', code: 'WARNINGS.XAPI.NOT_FOUND' });
        continue;
      }
      const role = (isPlainObject(m.Rights) ? m.Rights.RoleName : undefined) ?? 'users';
      if (typeof role !== 'string' || !(ROLE_NAMES as readonly string[]).includes(role)) {
        problems.push({ target: 'RoleName', code: 'WARNINGS.XAPI.NOT_FOUND' });
        continue;
      }
      wanted.set(user.Id, role);
    }
    failAll(problems);
    for (const u of state.users.values()) {
      const idx = u.Groups.findIndex((m) => m.GroupId === g.Id);
      const role = wanted.get(u.Id);
      if (role === undefined) {
        if (idx >= 0) u.Groups.splice(idx, 1);
      } else if (idx >= 0) u.Groups[idx]!.Rights = { RoleName: role };
      else u.Groups.push({ Id: nextMembershipId++, GroupId: g.Id, Rights: { RoleName: role } });
    }
  };

  const groupFields = (body: Record<string, unknown>, self: XapiGroup | undefined): Record<string, unknown> => {
    checkBody('Pbx.Group', GROUP_PROPS, body);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(body)) if (!k.includes('@') && k !== 'Id' && k !== 'HasMembers' && k !== 'IsDefault') out[k] = v;
    const problems: Problem[] = [];
    if (self && 'Number' in out && out.Number !== null && out.Number !== self.Number) problems.push({ target: 'Number', code: 'WARNINGS.XAPI.FORBIDDEN_CHANGE' });
    if (!self && out.Number !== undefined && out.Number !== null && numberOwner(out.Number as string)) problems.push({ target: 'Number', code: 'WARNINGS.XAPI.ALREADY_IN_USE' });
    if (self) delete out.Number;
    if (!self && (typeof out.Name !== 'string' || out.Name === '')) problems.push({ target: 'Name', code: 'WARNINGS.XAPI.REQUIRED' });
    if (typeof out.Name === 'string') {
      if (out.Name.length > 50) problems.push({ target: 'Name', code: 'WARNINGS.LENGTH_NOT_MORE_50_CHARS' });
      for (const g of state.groups.values()) {
        if (g.Id !== self?.Id && g.Name.toLowerCase() === out.Name.toLowerCase()) {
          problems.push({ target: 'Name', code: 'WARNINGS.XAPI.ALREADY_IN_USE' });
          break;
        }
      }
    }
    failAll(problems);
    return out;
  };

  // ----- token -----------------------------------------------------------------------------
  const issueToken = (cid: string): string => {
    const old = currentTokenByClient.get(cid);
    if (old) tokens.delete(old);
    const tok = `fake.${randomBytes(24).toString('base64url')}`;
    tokens.set(tok, { clientId: cid, expiresAt: Date.now() + tokenLifetime * 1000 });
    currentTokenByClient.set(cid, tok);
    state.tokensIssued++;
    return tok;
  };

  const handleToken = (req: http.IncomingMessage, fields: Record<string, string>): [number, unknown] => {
    let cid = fields.client_id;
    let secret = fields.client_secret;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [u, p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
      cid ??= u;
      secret ??= p;
    }
    if (fields.grant_type !== 'client_credentials') {
      return [400, { error: 'unsupported_grant_type', error_description: 'The specified grant type is not supported.' }];
    }
    if (cid !== clientId || secret !== clientSecret) {
      return [401, { error: 'unauthorized', error_description: 'The request requires valid user authentication.' }];
    }
    const access = issueToken(cid);
    return [
      200,
      {
        token_type: 'Bearer',
        expires_in: options.legacyExpiresInMinutes ? Math.round(tokenLifetime / 60) : tokenLifetime,
        access_token: access,
        refresh_token: null,
      },
    ];
  };

  const authorized = (req: http.IncomingMessage): boolean => {
    const h = req.headers.authorization;
    if (!h?.startsWith('Bearer ')) return false;
    const tok = h.slice(7).trim();
    const info = tokens.get(tok);
    if (!info) return false;
    if (info.expiresAt <= Date.now()) {
      tokens.delete(tok);
      return false;
    }
    return currentTokenByClient.get(info.clientId) === tok;
  };

  // ----- XAPI routing ----------------------------------------------------------------------
  const parseKey = (seg: string): { set: string; key?: string } => {
    const m = /^([A-Za-z]+)(?:\((.*)\))?$/.exec(seg);
    if (!m) return { set: seg };
    return { set: m[1]!, key: m[2] };
  };

  const intKey = (key: string): number => {
    const m = /^(?:Id=)?(-?\d+)$/.exec(key);
    if (!m) throw new ODataQueryError(`The key value '${key}' is not a valid Edm.Int32.`);
    return Number(m[1]);
  };

  const stringKey = (key: string, name: string): string | undefined => {
    const m = new RegExp(`^${name}='((?:[^']|'')*)'$`).exec(key);
    return m ? m[1]!.replace(/''/g, "'") : undefined;
  };

  const findUser = (key: string): XapiUser => {
    if (key.startsWith('Number=')) {
      const num = stringKey(key, 'Number');
      if (num === undefined) throw new ODataQueryError(`The key value '${key}' is not a valid Edm.String literal.`);
      const u = [...state.users.values()].find((x) => x.Number === num);
      if (!u) notFound('Number');
      return u;
    }
    const u = state.users.get(intKey(key));
    if (!u) notFound('Id');
    return u;
  };

  const bodyObject = (body: unknown): Record<string, unknown> => {
    if (body === undefined) return {};
    if (!isPlainObject(body)) badRequest('The request body must be a JSON object.');
    return body;
  };

  type Result = [number, unknown?];

  const xapi = (method: string, segs: string[], q: Record<string, string>, body: unknown, req: http.IncomingMessage): Result => {
    const [s0 = '', s1, s2] = segs;
    const { set, key } = parseKey(s0);
    const GET = method === 'GET';
    const POST = method === 'POST';
    const PATCH = method === 'PATCH' || method === 'PUT';
    const DELETE = method === 'DELETE';

    if (segs.length > 3 || (s2 !== undefined && set !== 'Users')) notFoundSegment(segs.join('/'));

    switch (set) {
      case 'Defs':
        if (s1 === 'Pbx.GetRoutes' && POST) {
          const ids = bodyObject(body).ids;
          if (!Array.isArray(ids)) badRequest('ids: the parameter is required', 'ids');
          return [200, { '@odata.context': contextUrl('Collection(Pbx.SetRouteRequest)'), value: ids.map((id) => ({ Id: id, Routes: routesOf(id as number) })) }];
        }
        if (s1 === undefined && GET) return [200, { '@odata.context': contextUrl('Defs/$entity'), Id: 0 }];
        break;

      case 'Users': {
        if (key === undefined) {
          if (s1 === undefined) {
            if (GET) return [200, sendCollection('User', 'Users', [...state.users.values()], q)];
            if (POST) {
              const u = createUser(bodyObject(body));
              return [201, { '@odata.context': contextUrl('Users/$entity'), ...project('User', u, { expand: new Map() }) }];
            }
            break;
          }
          if (s1 === 'Pbx.GetFirstAvailableExtensionNumber()' || s1 === 'Pbx.GetFirstAvailableHotdeskingNumber()') {
            if (!GET) break;
            const n = firstFreeNumber();
            if (n === undefined) fail(400, 'Number', 'WARNINGS.NO_MORE_NUMBERS_AVAILABLE');
            return [200, { '@odata.context': contextUrl('Pbx.FirstAvailableNumber'), Number: n }];
          }
          if (s1 === 'Pbx.BatchDelete' && POST) {
            const b = bodyObject(body);
            const ids = b.ids ?? b.Ids;
            if (!Array.isArray(ids)) badRequest('ids: the parameter is required', 'ids');
            const failures: Array<{ ExtensionNumber: string; Error: string }> = [];
            for (const id of ids) {
              const num = Number.isInteger(id) ? state.users.get(id as number)?.Number : undefined;
              const err = Number.isInteger(id) ? deleteUserChecked(id as number) : 'WARNINGS.XAPI.NOT_FOUND';
              if (err) failures.push({ ExtensionNumber: num ?? String(id), Error: err });
            }
            return [200, { '@odata.context': contextUrl('Collection(Pbx.UserDeleteError)'), value: failures }];
          }
          if (s1 === 'Pbx.GetDuplicatedEmails' && POST) {
            const emails = bodyObject(body).emails;
            if (!Array.isArray(emails)) badRequest('emails: the parameter is required', 'emails');
            const have = new Set([...state.users.values()].map((u) => String(u.EmailAddress ?? '').toLowerCase()).filter(Boolean));
            return [200, { '@odata.context': contextUrl('Collection(Edm.String)'), value: emails.filter((e) => typeof e === 'string' && have.has(e.toLowerCase())) }];
          }
          if (s1 === 'Pbx.RegeneratePasswords' && POST) {
            const b = bodyObject(body);
            const ids = b.Ids ?? b.ids;
            if (!Array.isArray(ids)) badRequest('Ids: the parameter is required', 'Ids');
            for (const id of ids) {
              const u = state.users.get(id as number);
              if (u) regenerate(u, isPlainObject(b.opts) ? b.opts : {});
            }
            return [204];
          }
          if (['Pbx.RebootPhone', 'Pbx.ReprovisionPhone', 'Pbx.UpgradePhone', 'Pbx.ReprovisionAllPhones'].includes(s1) && POST) return [204];
          break;
        }
        const u = findUser(key);
        if (s1 === undefined) {
          if (GET) return [200, sendEntity('User', 'Users', u, q)];
          if (PATCH) {
            patchUser(u, bodyObject(body));
            return [204];
          }
          if (DELETE) {
            const err = deleteUserChecked(u.Id);
            if (err) fail(400, 'Id', err);
            return [204];
          }
          break;
        }
        if (s1 === 'Pbx.SendWelcomeEmail' && POST) {
          state.welcomeEmails.push({ userId: u.Id, number: u.Number, email: u.EmailAddress, at: Date.now() });
          return [204];
        }
        if (s1 === 'Pbx.Regenerate' && POST) {
          const opts = bodyObject(body).opts;
          regenerate(u, isPlainObject(opts) ? opts : {});
          return [204];
        }
        if (s1 === 'Pbx.HasDuplicatedEmail()' && GET) {
          const e = String(u.EmailAddress ?? '').toLowerCase();
          const dup = e !== '' && [...state.users.values()].some((x) => x.Id !== u.Id && String(x.EmailAddress ?? '').toLowerCase() === e);
          return [200, { '@odata.context': contextUrl('Edm.Boolean'), value: dup }];
        }
        if (s1 === 'Pbx.GetPhoneSecret()' && GET) return [200, { '@odata.context': contextUrl('Edm.String'), value: u.AuthPassword }];
        if (s1 === 'Pbx.GenerateProvLink()' && GET) return [200, { '@odata.context': contextUrl('Edm.String'), value: `${baseUrl}/provisioning/${u.Number}` }];
        const nav = defs.User!.nav[s1];
        if (nav && GET && s2 === undefined) {
          const v = nav.get(u) as unknown[];
          return [200, sendCollection(nav.kind, `Users(${u.Id})/${s1}`, v, q)];
        }
        break;
      }

      case 'Groups': {
        if (key === undefined) {
          if (s1 === undefined) {
            if (GET) return [200, sendCollection('Group', 'Groups', [...state.groups.values()], q)];
            if (POST) {
              const b = bodyObject(body);
              const fields = groupFields(b, undefined);
              const members = fields.Members;
              delete fields.Members;
              const g = newGroup(fields.Name as string, (fields.Number as string | undefined) ?? nextGroupNumber(), false, fields as Partial<XapiGroup>);
              if (members !== undefined) applyGroupMembers(g, members);
              return [201, { '@odata.context': contextUrl('Groups/$entity'), ...project('Group', g, { expand: new Map() }) }];
            }
            break;
          }
          if (s1 === 'Pbx.DeleteCompanyById' && POST) {
            const id = bodyObject(body).id;
            if (!Number.isInteger(id)) badRequest('id: the parameter is required', 'id');
            deleteGroupChecked(id as number);
            return [204];
          }
          if (s1 === 'Pbx.DeleteCompanyByNumber' && POST) {
            const num = bodyObject(body).number;
            const g = [...state.groups.values()].find((x) => x.Number === num);
            if (!g) notFound('number');
            deleteGroupChecked(g.Id);
            return [204];
          }
          break;
        }
        let g: XapiGroup | undefined;
        if (key.startsWith('Number=')) {
          const num = stringKey(key, 'Number');
          g = [...state.groups.values()].find((x) => x.Number === num);
        } else g = state.groups.get(intKey(key));
        if (!g) notFound('Id');
        if (s1 === undefined) {
          if (GET) return [200, sendEntity('Group', 'Groups', g, q)];
          if (PATCH) {
            const fields = groupFields(bodyObject(body), g);
            const members = fields.Members;
            delete fields.Members;
            for (const k of ['Rights', 'Groups', 'OfficeHolidays']) delete fields[k];
            if (members !== undefined) applyGroupMembers(g, members);
            Object.assign(g, fields);
            return [204];
          }
          if (DELETE) {
            deleteGroupChecked(g.Id);
            return [204];
          }
          break;
        }
        const nav = defs.Group!.nav[s1];
        if (nav && GET) return [200, sendCollection(nav.kind, `Groups(${g.Id})/${s1}`, nav.get(g) as unknown[], q)];
        if (s1 === 'Pbx.GetRestrictions()' && GET) return [200, { '@odata.context': contextUrl('Pbx.GroupRestrictions'), Users: state.users.size }];
        break;
      }

      case 'Trunks': {
        if (key === undefined) {
          if (s1 === undefined && GET) return [200, sendCollection('Trunk', 'Trunks', [...state.trunks.values()], q)];
          if (s1 === 'Pbx.SetRoutes' && POST) {
            setRoutes(bodyObject(body));
            return [204];
          }
          break;
        }
        let t: XapiTrunk | undefined;
        if (key.startsWith('Number=')) {
          const num = stringKey(key, 'Number');
          t = [...state.trunks.values()].find((x) => x.Number === num);
        } else t = state.trunks.get(intKey(key));
        if (!t) notFound('Id');
        if (s1 === undefined) {
          if (GET) return [200, sendEntity('Trunk', 'Trunks', t, q)];
          if (PATCH) {
            patchTrunk(t, bodyObject(body));
            return [204];
          }
        }
        break;
      }

      case 'DidNumbers':
        if (key === undefined && s1 === undefined && GET) {
          const raws: DidRaw[] = [];
          for (const trunk of state.trunks.values()) for (const did of trunk.DidNumbers) raws.push({ did, trunk });
          return [200, sendCollection('DidNumber', 'DidNumbers', raws, q)];
        }
        break;

      case 'Peers': {
        if (key === undefined && s1 === undefined && GET) return [200, sendCollection('Peer', 'Peers', allPeers(), q)];
        if (key === undefined && s1 === 'Pbx.RetreivePeersByNumbers' && POST) {
          const b = bodyObject(body);
          const nums = isPlainObject(b.request) && Array.isArray(b.request.DnNumbers) ? (b.request.DnNumbers as string[]) : [];
          return [200, { '@odata.context': contextUrl('Collection(Pbx.Peer)'), value: allPeers().filter((p) => nums.includes(p.Number as string)) }];
        }
        if (key !== undefined && s1 === undefined && GET) {
          const num = key.startsWith('Number=') ? stringKey(key, 'Number') : undefined;
          const p = num !== undefined ? allPeers().find((x) => x.Number === num) : peerOf(intKey(key));
          if (!p) notFound(num !== undefined ? 'Number' : 'Id');
          return [200, sendEntity('Peer', 'Peers', p, q)];
        }
        break;
      }

      case 'PhoneTemplates': {
        if (key === undefined && s1 === undefined && GET) return [200, sendCollection('PhoneTemplate', 'PhoneTemplates', [...state.templates.values()], q)];
        if (key !== undefined && s1 === undefined && GET) {
          const id = stringKey(key, 'Id') ?? stringKey(`Id=${key}`, 'Id');
          const t = id !== undefined ? state.templates.get(id) : undefined;
          if (!t) notFound('Id');
          return [200, sendEntity('PhoneTemplate', 'PhoneTemplates', t, q)];
        }
        break;
      }

      case 'DeviceInfos': {
        if (key === undefined && s1 === undefined && GET) return [200, sendCollection('DeviceInfo', 'DeviceInfos', [...state.devices.values()], q)];
        if (key === undefined) break;
        const d = state.devices.get(intKey(key));
        if (!d) notFound('Id');
        if (s1 === undefined && GET) return [200, sendEntity('DeviceInfo', 'DeviceInfos', d, q)];
        if (s1 === undefined && DELETE) {
          state.devices.delete(d.Id);
          return [204];
        }
        if (s1 === 'Pbx.Provision' && POST) {
          const b = bodyObject(body);
          const u = Number.isInteger(b.userId) ? state.users.get(b.userId as number) : undefined;
          if (!u) fail(400, 'userId', 'WARNINGS.XAPI.NOT_FOUND');
          const owner = macOwner(d.MAC);
          if (owner && owner.Id !== u.Id) fail(400, 'Phones', 'WARNINGS.XAPI.MAC_USED_BY');
          if (!owner) {
            if (u.Phones.length >= maxPhones) fail(400, 'Phones', 'WARNINGS.XAPI.TOO_MANY_PHONES');
            u.Phones.push(makePhone(d.MAC, d.TemplateName, d.Model));
          }
          return [204];
        }
        break;
      }

      default:
        break;
    }
    void req;
    if (GET || POST || PATCH || DELETE) notFoundSegment(segs.join('/'));
    throw new HttpError(405, { error: { code: '', message: `The HTTP method '${method}' is not allowed.` } });
  };

  function notFoundSegment(path: string): never {
    throw new HttpError(404, { error: { code: '', message: `No HTTP resource was found that matches the request URI '${baseUrl}/xapi/v1/${path}'.` } });
  }

  const regenerate = (u: XapiUser, opts: Record<string, unknown>): void => {
    if (opts.SipAuth) {
      u.AuthID = randomAlnum(10);
      u.AuthPassword = randomAlnum(10);
    }
    if (opts.VoicemailPIN) u.VMPIN = randomDigits(6);
    if (opts.WebclientPassword) u.AccessPassword = randomAlnum(10);
    if (opts.DeskphonePassword) u.DeskphonePassword = randomAlnum(10);
    if (opts.ConfigurationLink) for (const p of u.Phones) p.ProvisioningLinkExt = `${baseUrl}/provisioning/${randomAlnum(12)}/${p.MacAddress}.xml`;
    state.regenerations.push({ userId: u.Id, opts, at: Date.now() });
    if (opts.SendWelcomeEmail) state.welcomeEmails.push({ userId: u.Id, number: u.Number, email: u.EmailAddress, at: Date.now() });
  };

  // ----- HTTP plumbing -------------------------------------------------------------------------
  const readBody = (req: http.IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  const parseMultipart = (buf: Buffer, contentType: string): Record<string, string> => {
    const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
    const boundary = m?.[1] ?? m?.[2];
    const out: Record<string, string> = {};
    if (!boundary) return out;
    for (const part of buf.toString('utf8').split(`--${boundary}`)) {
      const idx = part.indexOf('\r\n\r\n');
      if (idx < 0) continue;
      const headers = part.slice(0, idx);
      const name = /name="([^"]*)"/i.exec(headers)?.[1];
      if (name === undefined) continue;
      out[name] = part.slice(idx + 4).replace(/\r\n$/, '');
    }
    return out;
  };

  const parseBody = (buf: Buffer, contentType: string): unknown => {
    if (buf.length === 0) return undefined;
    const text = buf.toString('utf8');
    if (/application\/x-www-form-urlencoded/i.test(contentType)) return Object.fromEntries(new URLSearchParams(text));
    if (/multipart\/form-data/i.test(contentType)) return parseMultipart(buf, contentType);
    if (/json/i.test(contentType) || /^\s*[[{]/.test(text)) {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new HttpError(400, { error: { code: '', message: 'The request body is not valid JSON.' } });
      }
    }
    return text;
  };

  const HTML_502 =
    '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

  const isWritePath = (method: string, path: string): boolean => {
    if (!path.startsWith('/xapi/v1/') || method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return false;
    const last = path.split('/').pop() ?? '';
    return !READ_ONLY_ACTIONS.has(last);
  };

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const h: Record<string, string> = { 'X-3CX-Version': version, ...headers };
    if (body === undefined || status === 204) {
      res.writeHead(status, h);
      res.end();
      return;
    }
    if (typeof body === 'string') {
      res.writeHead(status, { 'Content-Type': h['Content-Type'] ?? 'text/html', ...h });
      res.end(body);
      return;
    }
    res.writeHead(status, { 'Content-Type': 'application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8', ...h });
    res.end(JSON.stringify(body));
  };

  const control = async (req: http.IncomingMessage, res: http.ServerResponse, path: string, body: unknown): Promise<void> => {
    const b = isPlainObject(body) ? body : {};
    switch (`${req.method} ${path}`) {
      case 'POST /__fake/faults': {
        if (Array.isArray(b.nextResponses)) {
          for (const f of b.nextResponses as Array<FaultResponse & { pathRegex?: string }>) {
            faults.nextResponses.push({ ...f, path: f.pathRegex ? new RegExp(f.pathRegex) : f.path });
          }
        }
        if ('failWritesWith' in b) faults.failWritesWith = (b.failWritesWith as WriteFailure | null) ?? null;
        if (typeof b.latencyMs === 'number') faults.latencyMs = b.latencyMs;
        if (b.revokeTokens === true) faults.revokeTokens();
        return send(res, 204, undefined);
      }
      case 'POST /__fake/reset-log':
        requests.length = 0;
        return send(res, 204, undefined);
      case 'GET /__fake/requests':
        return send(res, 200, { value: requests });
      case 'GET /__fake/stats':
        return send(res, 200, {
          users: state.users.size,
          groups: state.groups.size,
          routes: state.routes.size,
          requests: requests.length,
          writes: api.writes(),
          tokensIssued: state.tokensIssued,
        });
      case 'GET /__fake/state':
        return send(res, 200, {
          users: [...state.users.values()],
          groups: [...state.groups.values()],
          trunks: [...state.trunks.values()],
          routes: Object.fromEntries(state.routes),
          devices: [...state.devices.values()],
          welcomeEmails: state.welcomeEmails,
          regenerations: state.regenerations,
          defaultGroupId: state.defaultGroupId,
        });
      case 'POST /__fake/seed-users': {
        const n = typeof b.count === 'number' ? b.count : 0;
        const made = seedUsers(n);
        return send(res, 200, { created: made.length });
      }
      default:
        return send(res, 404, { error: { code: '', message: `unknown control endpoint ${req.method} ${path}` } });
    }
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const at = Date.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://fake');
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const contentType = String(req.headers['content-type'] ?? '');
    const raw = await readBody(req);

    if (path.startsWith('/__fake/')) {
      let body: unknown;
      try {
        body = parseBody(raw, contentType);
      } catch {
        body = undefined;
      }
      await control(req, res, path, body);
      return;
    }

    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));

    let status = 500;
    let logBody: unknown;
    try {
      let payload: unknown;
      let headers: Record<string, string> = {};
      try {
        payload = parseBody(raw, contentType);
        logBody = payload;
        if (isPlainObject(payload) && 'client_secret' in payload) logBody = { ...payload, client_secret: '***' };
        [status, payload, headers] = route(req, method, path, query, payload);
      } catch (e) {
        if (e instanceof HttpError) {
          [status, payload, headers] = [e.status, e.body, e.headers];
        } else if (e instanceof ODataQueryError) {
          [status, payload, headers] = [400, { error: { code: '', message: e.message } }, {}];
        } else {
          [status, payload, headers] = [500, { error: { code: '', message: `fake XAPI internal error: ${(e as Error).message}` } }, {}];
        }
      }
      send(res, status, payload, headers);
    } finally {
      requests.push({ method, path, query, body: logBody, status, at });
    }
  };

  const route = (
    req: http.IncomingMessage,
    method: string,
    path: string,
    query: Record<string, string>,
    body: unknown,
  ): [number, unknown, Record<string, string>] => {
    const isToken = path === '/connect/token';
    const isXapi = path.startsWith('/xapi/v1/') || path === '/xapi/v1';

    // Injected responses come first: they model a proxy / rate limiter in front of the PBX.
    if (isToken || isXapi) {
      const idx = faults.nextResponses.findIndex(
        (f) => (isXapi || f.includeToken) && (!f.method || f.method.toUpperCase() === method) && pathMatches(f.path, path),
      );
      if (idx >= 0) {
        const f = faults.nextResponses.splice(idx, 1)[0]!;
        const headers: Record<string, string> = {};
        if (f.retryAfter !== undefined) headers['Retry-After'] = String(f.retryAfter);
        if (f.html) {
          const title = f.status === 502 ? '502 Bad Gateway' : `${f.status} Error`;
          const page = f.status === 502 ? HTML_502 : HTML_502.replaceAll('502 Bad Gateway', title);
          return [f.status, page, { ...headers, 'Content-Type': 'text/html' }];
        }
        const b = f.body ?? { error: { code: '', message: f.status === 429 ? 'Too Many Requests' : `HTTP ${f.status}` } };
        return [f.status, b, headers];
      }
    }

    if (isToken) {
      if (method !== 'POST') throw new HttpError(405, { error: 'invalid_request', error_description: 'POST required.' });
      const fields: Record<string, string> = {};
      if (isPlainObject(body)) for (const [k, v] of Object.entries(body)) fields[k] = String(v);
      const [s, b] = handleToken(req, fields);
      return [s, b, { 'Cache-Control': 'no-store' }];
    }

    if (!isXapi) throw new HttpError(404, { error: { code: '', message: 'Not found' } });

    if (!authorized(req)) throw new HttpError(401, undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });

    if (faults.failWritesWith && isWritePath(method, path) && pathMatches(faults.failWritesWith.path, path)) {
      const f = faults.failWritesWith;
      if (f.times !== undefined) {
        f.times--;
        if (f.times <= 0) faults.failWritesWith = null;
      }
      const code = f.code ?? 'WARNINGS.XAPI.NOT_SUPPORTED';
      const envelope = f.target
        ? xapiError([{ target: f.target, code }])
        : { error: { code: '', message: code, details: [{ code: '', message: code }] } };
      return [f.status ?? 400, envelope, {}];
    }

    const segs = path.slice('/xapi/v1/'.length).split('/').filter(Boolean);
    const [status, payload] = xapi(method, segs, query, body, req);
    return [status, payload, {}];
  };

  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, (req, res) => void handle(req, res))
    : http.createServer((req, res) => void handle(req, res));
  // A real 3CX sits behind nginx (keep-alive 75 s). A short timeout here would make Node's https.Agent
  // refuse to reuse sockets (it keeps a 1 s margin), so every request would pay a TLS handshake that a
  // real deployment does not. close() ends idle keep-alive sockets itself (closeAllConnections).
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  const api: FakeXapi = {
    url: baseUrl,
    port,
    clientId,
    clientSecret,
    state,
    requests,
    writes: () => requests.filter((r) => isWritePath(r.method, r.path)).length,
    resetLog: () => {
      requests.length = 0;
    },
    faults,
    seedUser,
    seedUsers,
    seedGroup: (name, partial = {}) => newGroup(name, (partial.Number as string | undefined) ?? nextGroupNumber(), false, partial),
    seedDevice: (p) => {
      const mac = p.MAC.toLowerCase();
      const tpl = p.TemplateName ?? 'yealinkT4x.ph.xml';
      const d: XapiDeviceInfo = {
        Id: nextDeviceId++,
        MAC: mac,
        Model: p.Model ?? state.templates.get(tpl)?.Models[0]?.Name ?? 'Unknown',
        Vendor: p.Vendor ?? 'Yealink',
        TemplateName: tpl,
        UserAgent: `${p.Vendor ?? 'Yealink'} ${p.Model ?? ''} 1.0`.trim(),
        FirmwareVersion: '1.0.0',
        DetectedAt: new Date().toISOString(),
        NetworkAddress: '192.0.2.10',
        NetworkPath: '',
        InterfaceLink: '',
        Parameters: '',
        SbcName: '',
        ViaSBC: false,
      };
      state.devices.set(d.Id, d);
      return d;
    },
    currentToken: () => currentTokenByClient.get(clientId),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return api;
}

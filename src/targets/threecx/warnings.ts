import { ConflictError, TerminalError } from '../../errors/index.js';

/**
 * 3CX XAPI error bodies, turned into sentences an admin understands.
 *
 * 3CX answers a refused write with an OData error envelope whose real content is a list of `WARNINGS.*`
 * codes, one per refused field:
 *
 * ```json
 * {"error":{"code":"","message":"EmailAddress:\nWARNINGS.XAPI.ALREADY_IN_USE",
 *           "details":[{"code":"","message":"WARNINGS.XAPI.ALREADY_IN_USE","target":"EmailAddress"}]}}
 * ```
 *
 * `code` is empty, the field is in `details[].target` and again as the `"Field:"` line of `message`. A body can
 * carry several fields. Codes come in two prefixes (`WARNINGS.XAPI.X` and plain `WARNINGS.X`) for the same
 * family, so the table is keyed by the part after the prefix.
 */

/** One refusal: the field 3CX named (when it did) and the warning code, as sent. */
export interface XapiWarning {
  /** `details[].target` or the `Field:` line, e.g. `Number`, `EmailAddress`, `Phones[0].MacAddress`. */
  target?: string;
  /** The code as 3CX sent it (`WARNINGS.XAPI.ALREADY_IN_USE`), or free text when it was not a code. */
  code: string;
}

/** What the error is about, so the message can name the user and the values. */
export interface WarningContext {
  /** Who/what the call was about, e.g. `user 200 (Amanda Camden)`; prefixes the message. */
  subject?: string;
  /** The JSON body that was sent; refused values are read from it (never for secret fields). */
  body?: unknown;
}

/**
 * Parses an error response body (already a string) into warnings. Tolerates anything: HTML from a proxy,
 * an empty body, the token endpoint's `{error, error_description}`, or an envelope without details.
 * Returns an empty list when nothing recognisable was found.
 */
export function parseXapiError(text: string | undefined): { warnings: XapiWarning[]; message?: string } {
  if (!text) return { warnings: [] };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { warnings: [] };
  }
  if (!json || typeof json !== 'object') return { warnings: [] };
  const err = (json as { error?: unknown; error_description?: unknown }).error;
  // Token endpoint style: {"error":"unauthorized","error_description":"..."}
  if (typeof err === 'string') {
    const desc = (json as { error_description?: unknown }).error_description;
    return { warnings: [], message: typeof desc === 'string' && desc ? desc : err };
  }
  if (!err || typeof err !== 'object') return { warnings: [] };
  const e = err as { message?: unknown; details?: unknown; target?: unknown };
  const message = typeof e.message === 'string' ? e.message : undefined;
  const warnings: XapiWarning[] = [];
  if (Array.isArray(e.details)) {
    for (const d of e.details) {
      if (!d || typeof d !== 'object') continue;
      const dm = (d as { message?: unknown }).message;
      const dc = (d as { code?: unknown }).code;
      const target = (d as { target?: unknown }).target;
      const code = typeof dm === 'string' && dm ? dm : typeof dc === 'string' ? dc : '';
      if (!code) continue;
      warnings.push({ target: typeof target === 'string' && target ? target : undefined, code: code.trim() });
    }
  }
  if (warnings.length === 0 && message) warnings.push(...parseMessageLines(message, typeof e.target === 'string' ? e.target : undefined));
  return { warnings, message };
}

/**
 * The `message` alone: `"Field:\nCODE"` blocks, possibly several joined by newlines, or free text.
 * A line ending in ':' names the field for the code lines that follow it.
 */
function parseMessageLines(message: string, target: string | undefined): XapiWarning[] {
  const out: XapiWarning[] = [];
  let field = target;
  for (const raw of message.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^([A-Za-z][\w.[\]]*):\s*(.*)$/.exec(line);
    if (m && !m[1].startsWith('WARNINGS')) {
      field = m[1];
      if (m[2]) out.push({ target: field, code: m[2] });
      continue;
    }
    out.push({ target: field, code: line });
  }
  return out;
}

/** XAPI property → [words for an admin, the UserFields name used as TerminalError.field]. */
const FIELDS: Record<string, [string, string | undefined]> = {
  Number: ['extension', 'extension'],
  EmailAddress: ['e-mail address', 'email'],
  FirstName: ['first name', 'firstName'],
  LastName: ['last name', 'lastName'],
  DisplayName: ['display name', 'displayName'],
  Mobile: ['mobile number', 'mobile'],
  OutboundCallerID: ['outbound caller ID', 'outboundCallerId'],
  Language: ['language', 'language'],
  VMPIN: ['voicemail PIN', 'vmPin'],
  Groups: ['department', 'department'],
  PrimaryGroupId: ['main department', 'department'],
  Rights: ['role', 'role'],
  RoleName: ['role', 'role'],
  Phones: ['phone', 'phones'],
  MacAddress: ['phone MAC', 'phones'],
  TemplateName: ['phone template', 'phones'],
  Routes: ['DID', 'dids'],
  DID: ['DID', 'dids'],
  AccessPassword: ['web client password', undefined],
  AuthPassword: ['SIP password', undefined],
  ClickToCallId: ['click-to-call ID', 'options'],
  SIPID: ['SIP ID', 'options'],
  Name: ['name', 'department'],
};

/** Properties whose values must never appear in a message (DESIGN §6.6). */
const SECRET_PROPS = new Set(['VMPIN', 'AccessPassword', 'AuthPassword', 'DeskphonePassword', 'client_secret']);

/** A resolved warning target: the property (last path segment), its words, and the value sent (if not secret). */
interface Resolved {
  prop?: string;
  noun: string;
  field?: string;
  value?: string;
  /** Phone templates sent, when the target was `Phones`. */
  templates?: string;
}

function resolveTarget(target: string | undefined, body: unknown): Resolved {
  if (!target) return { noun: 'value' };
  const segments = target.split('.').map((s) => /^(\w+)(?:\[(\d+)\])?$/.exec(s));
  const last = segments[segments.length - 1];
  const root = segments[0];
  const prop = last?.[1] ?? target;
  const [noun, field] = FIELDS[prop] ?? FIELDS[root?.[1] ?? ''] ?? [target, undefined];
  let value: unknown = body;
  for (const seg of segments) {
    if (!seg || value === null || typeof value !== 'object') {
      value = undefined;
      break;
    }
    value = (value as Record<string, unknown>)[seg[1]];
    if (seg[2] !== undefined) value = Array.isArray(value) ? value[Number(seg[2])] : undefined;
  }
  // "Phones" without an index: name the MACs (and templates) that were sent.
  let templates: string | undefined;
  if (Array.isArray(value) && prop === 'Phones') {
    const phones = value as Array<{ MacAddress?: unknown; TemplateName?: unknown }>;
    templates = [...new Set(phones.map((p) => p?.TemplateName).filter((x) => typeof x === 'string' && x))].join(', ') || undefined;
    value = phones.map((p) => p?.MacAddress).filter(Boolean).join(', ');
  }
  if (SECRET_PROPS.has(prop)) value = undefined;
  const text = typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  return { prop, noun, field, value: text || undefined, templates };
}

/** How one warning code reads, and whether it is a collision with something pbxsync does not own. */
interface WarningRule {
  conflict?: boolean;
  text: (r: Resolved) => string;
}

const v = (r: Resolved) => (r.value ? ` ${r.value}` : '');

/**
 * The table of known codes, keyed by the code without its `WARNINGS.` / `WARNINGS.XAPI.` prefix. Anything not
 * here is passed through verbatim (3CX adds codes between versions; a raw code is still searchable).
 */
export const WARNING_TEXTS: Readonly<Record<string, WarningRule>> = {
  ALREADY_IN_USE: { conflict: true, text: (r) => `${r.noun}${v(r)} is already in use` },
  DUPLICATE: { conflict: true, text: (r) => `${r.noun}${v(r)} is used twice` },
  MAC_USED_BY: { conflict: true, text: (r) => `phone MAC${v(r)} is already attached to another user` },
  MAC_ADDRESS_ALREADY_IN_USE: { conflict: true, text: (r) => `phone MAC${v(r)} is already attached to another user` },
  INVALID_HEX_CHARACTER: { text: (r) => `phone MAC${v(r)} is not 12 hexadecimal digits` },
  TOO_MANY_PHONES: { text: () => 'too many phones: the 3CX licence or the user has reached its phone limit' },
  INVALID_PIN_NUMBER: { text: () => 'the voicemail PIN is not valid (3CX wants digits only, at least 4)' },
  INVALID_PASSWORD: { text: (r) => `the ${r.prop === 'VMPIN' ? 'voicemail PIN' : r.noun === 'value' ? 'password' : r.noun} does not meet 3CX's password rules` },
  FORBIDDEN_CHANGE: {
    text: (r) => (r.prop === 'Number' ? 'the extension number cannot be changed once created' : `3CX does not allow changing the ${r.noun}`),
  },
  NOT_FOUND: {
    text: (r) =>
      r.noun === 'value'
        ? 'not found in 3CX (deleted meanwhile?)'
        : r.prop === 'Phones'
          ? `phone template${r.templates ? ` ${r.templates}` : ''} is not known to 3CX (phone${v(r)})`
          : `${r.noun}${v(r)} does not exist in 3CX`,
  },
  REQUIRED: { text: (r) => `the ${r.noun} is required` },
  CAN_NOT_BE_EMPTY_STRING: { text: (r) => `the ${r.noun} cannot be empty` },
  OUT_OF_THE_RANGE: { text: (r) => `${r.noun}${v(r)} is outside the range 3CX allows` },
  STRING_TOO_LONG: { text: (r) => `the ${r.noun} is too long` },
  LENGTH_NOT_MORE_50_CHARS: { text: (r) => `the ${r.noun} is longer than 50 characters` },
  LENGTH_NOT_MORE_255_CHARS: { text: (r) => `the ${r.noun} is longer than 255 characters` },
  USER_ROLE_DOWNGRADE: {
    text: () => "3CX refused the role change: the API client's own role is below the role being set (nobody grants a role above their own)",
  },
  OTHER_USER_ROLE_DOWNGRADE: {
    text: () => "3CX refused to change another user's role: that user's role is above the API client's own",
  },
  NO_MORE_NUMBERS_AVAILABLE: { text: () => 'no free extension numbers are left in the allowed range' },
  LIMIT_REACHED: { text: () => 'a 3CX licence limit was reached' },
  LICENSE_NOT_FOUND: { text: () => '3CX has no valid licence for this operation' },
  NON_EXISTENT_EXT_NUMBER: { text: (r) => `extension${v(r)} does not exist` },
  NUMBER_IGNORED: { text: (r) => `3CX ignored the ${r.noun}${v(r)}` },
  INVALID_TIMEZONE: { text: () => 'the time zone is not valid' },
  USER_EXTENSION_CANNOT_BE_DELETED: { text: () => 'this user cannot be deleted in 3CX' },
  CANNOT_BE_DELETED: { text: () => '3CX does not allow deleting it' },
  OPERATOR_CANNOT_BE_DELETED: { text: () => 'it is the operator extension, which 3CX does not allow deleting' },
  GROUP_CANNOT_BE_DELETED: { text: () => 'the department cannot be deleted' },
  GROUP_WITH_MEMBERS_CANNOT_BE_DELETED: { text: () => 'the department still has members and cannot be deleted' },
};

/** `WARNINGS.XAPI.ALREADY_IN_USE` → `ALREADY_IN_USE`; anything else unchanged. */
export function shortCode(code: string): string {
  return code.replace(/^WARNINGS\.(XAPI\.)?/, '');
}

/** One warning as a sentence, plus whether it is a conflict and which UserFields field it concerns. */
export function describeWarning(w: XapiWarning, body?: unknown): { text: string; conflict: boolean; field?: string; value?: string } {
  const r = resolveTarget(w.target, body);
  const rule = w.code.startsWith('WARNINGS.') ? WARNING_TEXTS[shortCode(w.code)] : undefined;
  if (!rule) {
    // Unknown code or free text: verbatim, with the field it was about.
    return { text: w.target ? `${w.target}: ${w.code}` : w.code, conflict: false, field: r.field, value: r.value };
  }
  return { text: rule.text(r), conflict: rule.conflict === true, field: r.field, value: r.value };
}

/**
 * Builds the error for a refused request from its warnings: a ConflictError when any warning is a collision
 * (extension, e-mail, MAC already held by someone else), else a TerminalError. The message names the
 * subject and every refused field, e.g. `user 200 (Amanda Camden): extension 200 is already in use`.
 * Returns undefined when there are no warnings (the caller then falls back to the HTTP status).
 */
export function warningsToError(
  warnings: XapiWarning[],
  context: WarningContext,
  options?: { cause?: unknown; status?: number },
): TerminalError | undefined {
  if (warnings.length === 0) return undefined;
  const described = warnings.map((w) => ({ w, d: describeWarning(w, context.body) }));
  const text = [...new Set(described.map((x) => x.d.text))].join('; ');
  const message = context.subject ? `${context.subject}: ${text}` : text;
  const conflict = described.find((x) => x.d.conflict);
  const first = conflict ?? described[0];
  const code = `XAPI.${shortCode(first.w.code).slice(0, 60) || 'ERROR'}`;
  if (conflict) return new ConflictError(message, { cause: options?.cause, code, field: conflict.d.field });
  return new TerminalError(message, { cause: options?.cause, code, field: first.d.field });
}

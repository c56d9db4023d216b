/**
 * The OData v4 subset that the fake 3CX XAPI understands: `$filter` expressions
 * (tokenizer → recursive-descent parser → evaluator, no `eval`), `$orderby`, `$select` and
 * nested `$expand` option parsing.
 *
 * Supported in `$filter`: `eq ne gt ge lt le and or not ( )`, `null`, `true`/`false`, integers and
 * decimals, `'strings'` with `''` as the escaped quote, property paths with `/`
 * (e.g. `RoutingRule/OfficeHoursDestination/Number`), and the functions
 * `tolower toupper trim length contains startswith endswith indexof concat`.
 * Lambda operators (`any`/`all`) are rejected with an {@link ODataQueryError}, so a client relying
 * on them fails loudly instead of silently matching everything.
 */

/** A malformed query option; the server turns it into HTTP 400. */
export class ODataQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ODataQueryError';
  }
}

type Tok =
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'id'; v: string }
  | { t: 'lp' }
  | { t: 'rp' }
  | { t: 'comma' }
  | { t: 'end' };

/** Parsed `$filter` expression tree. */
export type FilterNode =
  | { k: 'lit'; v: string | number | boolean | null }
  | { k: 'prop'; path: string[] }
  | { k: 'not'; e: FilterNode }
  | { k: 'bin'; op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le' | 'and' | 'or'; l: FilterNode; r: FilterNode }
  | { k: 'call'; fn: string; args: FilterNode[] };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(') {
      out.push({ t: 'lp' });
      i++;
    } else if (c === ')') {
      out.push({ t: 'rp' });
      i++;
    } else if (c === ',') {
      out.push({ t: 'comma' });
      i++;
    } else if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new ODataQueryError('Unterminated string literal in $filter');
        if (src[i] === "'") {
          if (src[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += src[i];
        i++;
      }
      out.push({ t: 'str', v });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^-?\d+(\.\d+)?/.exec(src.slice(i))!;
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_$@]/.test(c)) {
      const m = /^[A-Za-z_$@][A-Za-z0-9_.$@]*(\/[A-Za-z_][A-Za-z0-9_]*)*/.exec(src.slice(i))!;
      out.push({ t: 'id', v: m[0] });
      i += m[0].length;
    } else {
      throw new ODataQueryError(`Syntax error at position ${i} in $filter: unexpected '${c}'`);
    }
  }
  out.push({ t: 'end' });
  return out;
}

const COMPARE = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);
const FUNCS: Record<string, number> = {
  tolower: 1,
  toupper: 1,
  trim: 1,
  length: 1,
  contains: 2,
  startswith: 2,
  endswith: 2,
  indexof: 2,
  concat: 2,
};

/** Parse a `$filter` string into an expression tree; throws {@link ODataQueryError} on bad syntax. */
export function parseFilter(src: string): FilterNode {
  const toks = tokenize(src);
  let p = 0;
  const peek = (): Tok => toks[p]!;
  const next = (): Tok => toks[p++]!;
  const isWord = (w: string): boolean => {
    const t = peek();
    return t.t === 'id' && t.v === w;
  };

  // or  := and ('or' and)*
  // and := not ('and' not)*
  // not := 'not' not | cmp
  // cmp := primary (op primary)?
  const parseOr = (): FilterNode => {
    let l = parseAnd();
    while (isWord('or')) {
      next();
      l = { k: 'bin', op: 'or', l, r: parseAnd() };
    }
    return l;
  };
  const parseAnd = (): FilterNode => {
    let l = parseNot();
    while (isWord('and')) {
      next();
      l = { k: 'bin', op: 'and', l, r: parseNot() };
    }
    return l;
  };
  const parseNot = (): FilterNode => {
    if (isWord('not')) {
      next();
      return { k: 'not', e: parseNot() };
    }
    return parseCmp();
  };
  const parseCmp = (): FilterNode => {
    const l = parsePrimary();
    const t = peek();
    if (t.t === 'id' && COMPARE.has(t.v)) {
      next();
      return { k: 'bin', op: t.v as 'eq', l, r: parsePrimary() };
    }
    return l;
  };
  const parsePrimary = (): FilterNode => {
    const t = next();
    switch (t.t) {
      case 'str':
        return { k: 'lit', v: t.v };
      case 'num':
        return { k: 'lit', v: t.v };
      case 'lp': {
        const e = parseOr();
        if (next().t !== 'rp') throw new ODataQueryError("')' expected in $filter");
        return e;
      }
      case 'id': {
        if (t.v === 'null') return { k: 'lit', v: null };
        if (t.v === 'true') return { k: 'lit', v: true };
        if (t.v === 'false') return { k: 'lit', v: false };
        if (peek().t === 'lp') {
          const fn = t.v.toLowerCase();
          if (t.v.includes('/') && /\/(any|all)$/.test(t.v)) {
            throw new ODataQueryError(`Lambda operator '${t.v}' is not supported by the fake`);
          }
          if (!(fn in FUNCS)) throw new ODataQueryError(`Unknown function '${t.v}' in $filter`);
          next();
          const args: FilterNode[] = [];
          if (peek().t !== 'rp') {
            args.push(parseOr());
            while (peek().t === 'comma') {
              next();
              args.push(parseOr());
            }
          }
          if (next().t !== 'rp') throw new ODataQueryError(`')' expected after arguments of ${t.v}`);
          if (args.length !== FUNCS[fn]) {
            throw new ODataQueryError(`Function '${t.v}' takes ${FUNCS[fn]} argument(s)`);
          }
          return { k: 'call', fn, args };
        }
        if (COMPARE.has(t.v) || t.v === 'and' || t.v === 'or') {
          throw new ODataQueryError(`Unexpected operator '${t.v}' in $filter`);
        }
        return { k: 'prop', path: t.v.split('/') };
      }
      default:
        throw new ODataQueryError('Unexpected end of $filter expression');
    }
  };

  const tree = parseOr();
  if (peek().t !== 'end') throw new ODataQueryError('Unexpected token after end of $filter expression');
  return tree;
}

/** Property names used by a filter (first path segment), for validating them against the entity type. */
export function filterProperties(node: FilterNode, out: Set<string> = new Set()): Set<string> {
  switch (node.k) {
    case 'prop':
      out.add(node.path[0]!);
      break;
    case 'not':
      filterProperties(node.e, out);
      break;
    case 'bin':
      filterProperties(node.l, out);
      filterProperties(node.r, out);
      break;
    case 'call':
      for (const a of node.args) filterProperties(a, out);
      break;
    default:
      break;
  }
  return out;
}

type Val = string | number | boolean | null | undefined | object;

function evalNode(node: FilterNode, row: Record<string, unknown>): Val {
  switch (node.k) {
    case 'lit':
      return node.v;
    case 'prop': {
      let cur: unknown = row;
      for (const seg of node.path) {
        if (cur === null || typeof cur !== 'object') return null;
        cur = (cur as Record<string, unknown>)[seg];
      }
      return (cur ?? null) as Val;
    }
    case 'not':
      return !truthy(evalNode(node.e, row));
    case 'bin': {
      if (node.op === 'and') return truthy(evalNode(node.l, row)) && truthy(evalNode(node.r, row));
      if (node.op === 'or') return truthy(evalNode(node.l, row)) || truthy(evalNode(node.r, row));
      return compare(node.op, evalNode(node.l, row), evalNode(node.r, row));
    }
    case 'call': {
      const a = node.args.map((x) => evalNode(x, row));
      const s0 = typeof a[0] === 'string' ? a[0] : null;
      const s1 = typeof a[1] === 'string' ? a[1] : null;
      switch (node.fn) {
        case 'tolower':
          return s0 === null ? null : s0.toLowerCase();
        case 'toupper':
          return s0 === null ? null : s0.toUpperCase();
        case 'trim':
          return s0 === null ? null : s0.trim();
        case 'length':
          return s0 === null ? null : s0.length;
        case 'contains':
          return s0 !== null && s1 !== null && s0.includes(s1);
        case 'startswith':
          return s0 !== null && s1 !== null && s0.startsWith(s1);
        case 'endswith':
          return s0 !== null && s1 !== null && s0.endsWith(s1);
        case 'indexof':
          return s0 === null || s1 === null ? null : s0.indexOf(s1);
        case 'concat':
          return s0 === null || s1 === null ? null : s0 + s1;
        default:
          return null;
      }
    }
    default:
      return null;
  }
}

function truthy(v: Val): boolean {
  return v === true;
}

function compare(op: string, l: Val, r: Val): boolean {
  // OData null semantics: null eq null is true; any ordering comparison involving null is false.
  if (l === null || l === undefined || r === null || r === undefined) {
    const ln = l === null || l === undefined;
    const rn = r === null || r === undefined;
    if (op === 'eq') return ln && rn;
    if (op === 'ne') return ln !== rn;
    return false;
  }
  if (typeof l === 'object' || typeof r === 'object') {
    throw new ODataQueryError('Cannot compare a complex or collection property in $filter');
  }
  if (typeof l !== typeof r) {
    // Real OData rejects e.g. `Number eq 100` on a string property with a type error.
    throw new ODataQueryError(
      `A binary operator with incompatible types was detected. Found operand types '${typeName(l)}' and '${typeName(r)}' for operator kind '${op}'.`,
    );
  }
  switch (op) {
    case 'eq':
      return l === r;
    case 'ne':
      return l !== r;
    case 'gt':
      return l > r;
    case 'ge':
      return l >= r;
    case 'lt':
      return l < r;
    case 'le':
      return l <= r;
    default:
      return false;
  }
}

function typeName(v: unknown): string {
  if (typeof v === 'string') return 'Edm.String';
  if (typeof v === 'boolean') return 'Edm.Boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'Edm.Int32' : 'Edm.Decimal';
  return 'Edm.Untyped';
}

/** Evaluate a parsed filter against one (raw, unprojected) entity. */
export function matchesFilter(node: FilterNode, row: Record<string, unknown>): boolean {
  return truthy(evalNode(node, row));
}

/** One `$orderby` item. */
export interface OrderBy {
  path: string[];
  desc: boolean;
}

/** Parse `$orderby=Number asc,LastName desc`. */
export function parseOrderBy(src: string): OrderBy[] {
  return splitTopLevel(src, ',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const m = /^([A-Za-z_][A-Za-z0-9_/]*)(?:\s+(asc|desc))?$/i.exec(item);
      if (!m) throw new ODataQueryError(`Invalid $orderby item '${item}'`);
      return { path: m[1]!.split('/'), desc: (m[2] ?? 'asc').toLowerCase() === 'desc' };
    });
}

/** Sort rows in place by the `$orderby` items, nulls first (as OData/SQL ascending does). */
export function sortRows<T extends Record<string, unknown>>(rows: T[], order: OrderBy[]): T[] {
  const get = (row: Record<string, unknown>, path: string[]): unknown => {
    let cur: unknown = row;
    for (const s of path) {
      if (cur === null || typeof cur !== 'object') return null;
      cur = (cur as Record<string, unknown>)[s];
    }
    return cur ?? null;
  };
  return rows.sort((a, b) => {
    for (const o of order) {
      const x = get(a, o.path);
      const y = get(b, o.path);
      let c = 0;
      if (x === y) c = 0;
      else if (x === null) c = -1;
      else if (y === null) c = 1;
      else c = (x as number) < (y as number) ? -1 : 1;
      if (c !== 0) return o.desc ? -c : c;
    }
    return 0;
  });
}

/** Split on a separator that is not inside parentheses or quotes. */
export function splitTopLevel(src: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (const c of src) {
    if (c === "'") quoted = !quoted;
    if (!quoted) {
      if (c === '(') depth++;
      if (c === ')') depth--;
      if (c === sep && depth === 0) {
        out.push(cur);
        cur = '';
        continue;
      }
    }
    cur += c;
  }
  if (cur !== '' || out.length > 0) out.push(cur);
  return out;
}

/** Options that apply to one level of a response (top level or inside an `$expand`). */
export interface QueryOptions {
  filter?: FilterNode;
  /** Raw `$filter` text, kept for error messages. */
  filterText?: string;
  select?: string[];
  expand: Map<string, QueryOptions>;
  orderby?: OrderBy[];
  top?: number;
  skip?: number;
  count?: boolean;
  search?: string;
}

function parseNonNegInt(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new ODataQueryError(`Invalid value '${v}' for ${name}: a non-negative integer is expected`);
  return Number(v);
}

function parseExpand(src: string): Map<string, QueryOptions> {
  const map = new Map<string, QueryOptions>();
  for (const raw of splitTopLevel(src, ',')) {
    const item = raw.trim();
    if (!item) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\))?$/s.exec(item);
    if (!m) throw new ODataQueryError(`Invalid $expand item '${item}'`);
    const nested: Record<string, string> = {};
    if (m[2] !== undefined) {
      for (const part of splitTopLevel(m[2], ';')) {
        const eq = part.indexOf('=');
        if (eq < 0) throw new ODataQueryError(`Invalid nested option '${part}' in $expand`);
        nested[part.slice(0, eq).trim()] = part.slice(eq + 1);
      }
    }
    map.set(m[1]!, parseQueryOptions(nested));
  }
  return map;
}

/**
 * Parse system query options from a name → value map (already URL-decoded).
 * Unknown `$options` are rejected like a real OData service does; non-`$` parameters are ignored.
 */
export function parseQueryOptions(q: Record<string, string>): QueryOptions {
  const o: QueryOptions = { expand: new Map() };
  for (const [k, v] of Object.entries(q)) {
    switch (k) {
      case '$filter':
        o.filterText = v;
        o.filter = parseFilter(v);
        break;
      case '$select':
        o.select = splitTopLevel(v, ',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case '$expand':
        o.expand = parseExpand(v);
        break;
      case '$orderby':
        o.orderby = parseOrderBy(v);
        break;
      case '$top':
        o.top = parseNonNegInt('$top', v);
        break;
      case '$skip':
        o.skip = parseNonNegInt('$skip', v);
        break;
      case '$count':
        if (v !== 'true' && v !== 'false') throw new ODataQueryError(`Invalid value '${v}' for $count`);
        o.count = v === 'true';
        break;
      case '$search':
        o.search = v;
        break;
      case '$format':
        break;
      default:
        if (k.startsWith('$')) throw new ODataQueryError(`The query parameter '${k}' is not supported.`);
    }
  }
  return o;
}

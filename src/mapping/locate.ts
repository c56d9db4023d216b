import { isMap, isPair, isScalar, isSeq, LineCounter, type Document, type Node } from 'yaml';

/** A path into a YAML document: property names and array indexes. */
export type DocPath = ReadonlyArray<string | number>;

/** Line and column (1-based) of a position in a YAML source. */
export interface Position {
  line: number;
  column?: number;
}

/** `role.rules[2].role` for ['role', 'rules', 2, 'role']. */
export function formatPath(path: DocPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** Splits an ajv `instancePath` (JSON pointer, `/role/rules/2/role`) into a DocPath. */
export function pointerToPath(pointer: string): DocPath {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/**
 * Finds where `path` is written in the document. `key: true` points at the property name rather than its
 * value (unknown properties are reported at their key). When the path does not exist (a missing required
 * property), the nearest existing ancestor is used, so every problem still gets a line.
 */
export function locate(doc: Document, lines: LineCounter, path: DocPath, options: { key?: boolean } = {}): Position | undefined {
  let node: unknown = doc.contents;
  let at: number | undefined = rangeStart(node);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
      if (!pair) break;
      const last = i === path.length - 1;
      node = pair.value;
      at = last && options.key ? rangeStart(pair.key) : (rangeStart(pair.value) ?? rangeStart(pair.key));
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      node = node.items[seg];
      at = rangeStart(node) ?? at;
    } else break;
  }
  if (at === undefined) return undefined;
  const { line, col } = lines.linePos(at);
  return { line, column: col };
}

/** The position of character `offset` of a scalar's value, for errors inside an expression. */
export function locateInScalar(doc: Document, lines: LineCounter, path: DocPath, offset: number): Position | undefined {
  const node = doc.getIn(path, true) as Node | undefined;
  if (!isScalar(node) || !node.range) return locate(doc, lines, path);
  const start = lines.linePos(node.range[0]);
  const text = String(node.value);
  // Parsers report "unexpected end" past the trailing newline of a block scalar; keep it on the last line.
  const before = text.slice(0, Math.min(Math.max(0, offset), text.trimEnd().length));
  const newlines = before.split('\n').length - 1;
  // Block scalars (| and >) begin on the line after their indicator; flow scalars on the same line.
  const block = node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED';
  if (!block && newlines === 0) {
    const quote = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? 1 : 0;
    return { line: start.line, column: start.col + quote + before.length };
  }
  return { line: start.line + newlines + (block ? 1 : 0) };
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' ? key : undefined;
}

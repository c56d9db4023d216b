import { isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { ConfigProblem } from '../errors/index.js';

/** One step of a path into a document: a map key or a sequence index. */
export type PathSegment = string | number;

/** Formats a path the way ConfigProblem.path wants it: `sources[1].csv.mode`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Splits an ajv instancePath (`/sources/0/csv`, JSON Pointer) into segments; digits become indexes. */
export function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/**
 * A parsed YAML file that can say where any path sits, so every problem found later (schema, rules,
 * secrets) carries a line and column.
 */
export class LocatedDocument {
  readonly file: string;
  readonly doc: Document.Parsed;
  private readonly lines: LineCounter;

  private constructor(file: string, doc: Document.Parsed, lines: LineCounter) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
  }

  /**
   * Parses YAML text. Syntax errors come back as problems with line and column; their messages are the
   * parser's short form without the source excerpt, because the excerpt could quote an inline secret.
   */
  static parse(file: string, text: string): { document: LocatedDocument; problems: ConfigProblem[]; warnings: ConfigProblem[] } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const document = new LocatedDocument(file, doc, lines);
    const convert = (e: { message: string; pos: [number, number] }): ConfigProblem => ({
      file,
      ...document.position(e.pos[0]),
      path: '',
      message: `YAML: ${e.message.split('\n')[0]}`,
    });
    return { document, problems: doc.errors.map(convert), warnings: doc.warnings.map(convert) };
  }

  /** The document as plain data (null for an empty file). */
  toJS(): unknown {
    return this.doc.toJS({ maxAliasCount: 1000 });
  }

  /** Line and column (1-based) of a character offset. */
  position(offset: number): { line: number; column: number } {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * Where `path` is written: the value's node, or with `key: true` the key of the last segment (an unknown
   * key). A path that does not exist (a missing required key) resolves to its deepest existing ancestor.
   */
  locate(path: readonly PathSegment[], options: { key?: boolean } = {}): { line?: number; column?: number } {
    let node: unknown = this.doc.contents;
    let found: Node | undefined = isNode(node) ? node : undefined;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
        if (!pair) break;
        const keyNode = isNode(pair.key) ? pair.key : undefined;
        if (last && options.key && keyNode) {
          found = keyNode;
          break;
        }
        node = pair.value;
        found = isNode(pair.value) ? pair.value : keyNode ?? found;
        if (!isNode(pair.value)) break;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
        node = node.items[seg];
        if (isNode(node)) found = node;
        else break;
      } else {
        break;
      }
    }
    if (!found?.range) return this.doc.contents ? {} : { line: 1, column: 1 };
    return this.position(found.range[0]);
  }
}

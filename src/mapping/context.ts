import type { ConfigProblem } from '../errors/index.js';
import type { Identity, RecordIssue, UserFields } from '../model/index.js';
import type { NumberingPolicy } from '../reconcile/types.js';
import { ExpressionSet } from './expressions.js';
import { formatPath, type DocPath, type Position } from './locate.js';
import type { Decision } from './types.js';
import type { Subject } from './values.js';

/** What the compiler needs besides the spec: naming, numbering and a sink for problems. */
export interface CompileContext {
  /** The mapping file as given (ConfigProblem.file). */
  readonly file: string;
  readonly numbering: NumberingPolicy;
  readonly expressions: ExpressionSet;
  /** The mapping file as rules name it (the `<file>` of {@link rule}). */
  readonly ruleFile: string;
  /** `<file>#<yaml path>`, the Decision.rule of a rule at `path`. */
  rule(path: DocPath): string;
  /** Reports a problem at `path` (its line is looked up in the YAML document). */
  problem(path: DocPath, message: string): void;
  /** Reports a problem inside the scalar at `path`, at character `offset` (expression syntax errors). */
  problemAt(path: DocPath, offset: number | undefined, message: string): void;
  /** Compiles a JSONata expression written at `path`; undefined after reporting a syntax error. */
  expression(source: string, path: DocPath): number | undefined;
}

/** Builds a CompileContext; `locate` and `locateIn` resolve YAML positions. */
export function createContext(options: {
  file: string;
  ruleFile: string;
  numbering: NumberingPolicy;
  problems: ConfigProblem[];
  locate: (path: DocPath) => Position | undefined;
  locateIn: (path: DocPath, offset: number) => Position | undefined;
}): CompileContext {
  const expressions = new ExpressionSet();
  const push = (path: DocPath, message: string, pos: Position | undefined) =>
    options.problems.push({ file: options.file, line: pos?.line, column: pos?.column, path: formatPath(path), message });
  const ctx: CompileContext = {
    file: options.file,
    numbering: options.numbering,
    expressions,
    ruleFile: options.ruleFile,
    rule: (path) => `${options.ruleFile}#${formatPath(path)}`,
    problem: (path, message) => push(path, message, options.locate(path)),
    problemAt: (path, offset, message) =>
      push(path, message, offset === undefined ? options.locate(path) : options.locateIn(path, offset)),
    expression: (source, path) =>
      expressions.add(source, { syntaxError: (message, position) => ctx.problemAt(path, position, message) }),
  };
  return ctx;
}

/** What the compiled rules write while mapping one identity. */
export interface Output {
  fields: Partial<UserFields>;
  issues: RecordIssue[];
  reasons: Decision[];
  /** The main department once decided (extension ranges may depend on it). */
  department?: string;
}

/** A compiled rule: reads the subject, writes the output. Synchronous: expressions were evaluated before. */
export type Step = (subject: Subject, out: Output) => void;

/** A RecordIssue about `field` (the attribute or column name) of the subject's record. */
export function recordIssue(identity: Identity, field: string, message: string): RecordIssue {
  return {
    source: identity.source,
    file: identity.origin?.file,
    line: identity.origin?.line,
    field,
    record: identity.anchor,
    message,
  };
}

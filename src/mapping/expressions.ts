import { createRequire } from 'node:module';
import type jsonataType from 'jsonata';
import type { Identity } from '../model/index.js';

const requireLazily = createRequire(import.meta.url);

/**
 * JSONata, loaded when the first expression is compiled: most mappings have none, and loading it costs
 * ~40 ms at every start otherwise. (CommonJS, so a synchronous require keeps compiling synchronous.)
 */
export function jsonata(source: string): jsonataType.Expression {
  return (requireLazily('jsonata') as typeof jsonataType)(source);
}

/** The value an expression produced for one identity when its evaluation threw. */
export class ExpressionFailure {
  constructor(readonly message: string) {}
}

/** Where an expression sits in the mapping file, for syntax errors. */
export interface ExpressionSite {
  /** Reports a syntax error at character `position` of the expression. */
  syntaxError(message: string, position: number | undefined): void;
}

/**
 * The JSONata expressions of one mapping, compiled once at load. `map()` evaluates all of them up front
 * (JSONata is async) so the rest of the mapping runs synchronously over plain values; mappings without
 * expressions never touch JSONata.
 */
export class ExpressionSet {
  private readonly compiled: jsonataType.Expression[] = [];

  /** Number of expressions. */
  get size(): number {
    return this.compiled.length;
  }

  /**
   * Compiles `source` and returns its index, or undefined after reporting a syntax error to `site`.
   */
  add(source: string, site: ExpressionSite): number | undefined {
    try {
      this.compiled.push(jsonata(source));
      return this.compiled.length - 1;
    } catch (err) {
      const e = err as { message?: string; position?: number };
      site.syntaxError(`JSONata syntax error: ${e.message ?? String(err)}`, e.position);
      return undefined;
    }
  }

  /**
   * Evaluates every expression for one identity. The input is the attributes at the top level plus
   * `groups` and `disabled`; `$source`, `$anchor`, `$dn` and `$ou` are bound. A failing expression yields
   * an ExpressionFailure instead of rejecting, because it only matters if the mapping uses its value.
   */
  async evaluateAll(identity: Identity): Promise<unknown[]> {
    if (this.compiled.length === 0) return [];
    const input = { ...identity.attributes, groups: identity.groups, disabled: identity.disabled };
    const bindings = {
      source: identity.source,
      anchor: identity.anchor,
      dn: identity.origin?.dn,
      ou: identity.origin?.ou,
    };
    return Promise.all(
      this.compiled.map((expr) =>
        expr.evaluate(input, bindings).then(
          (value) => value as unknown,
          (err: unknown) => new ExpressionFailure((err as { message?: string }).message ?? String(err)),
        ),
      ),
    );
  }
}

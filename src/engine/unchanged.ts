/**
 * Recognising an input that was already applied, so the same file dropped again (a nightly export that did
 * not change, a file re-sent by a script) costs a hash instead of a read, a mapping and a diff.
 *
 * Bitwarden Directory Connector skips a sync whose request hash equals the last one; on its own that would
 * hide drift (a user changed by hand in the PBX since). Here the shortcut also requires that neither the PBX
 * store nor the bindings changed since the run that applied the input, and that that run converged:
 *
 * - the input, the mapping in use, the configuration and the pbxsync version hash to the same fingerprint;
 * - the mapping is deterministic (no JSONata, which may read the clock);
 * - the run that recorded it applied every operation (nothing failed, held or interrupted), had no rejected
 *   record and no conflict (those must be reported again), and left no binding of the source waiting out a
 *   removal grace period (time alone would change that plan);
 * - the target's revision (file metadata of the embedded store; 3CX has none, so never there) and the
 *   bindings' revision are what that run left.
 *
 * Under those conditions the plan is the one a re-plan right after that run would give: empty, since a sync
 * converges (DESIGN §6 invariant 1, tested). `--full`, dry runs and approvals always compare for real.
 */
import crypto from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { project } from '../util/project.js';
import type { ConvergedInput } from '../state/store.js';
import type { ApplyReport } from '../reconcile/apply.js';
import type { Plan } from '../reconcile/types.js';
import type { Engine } from './engine.js';
import type { MappedRead } from './read.js';

/** Bumped when the meaning of a recorded fingerprint changes. */
const FINGERPRINT_FORMAT = 'pbxsync-converged/1';

/** pbxsync's own version ('unknown' when its package.json cannot be found). */
function pbxsyncVersion(): string {
  try {
    return project().pkg.version ?? '0';
  } catch {
    return 'unknown';
  }
}

async function hashFile(hash: crypto.Hash, file: string): Promise<void> {
  // One buffer read into again and again: a stream's fresh 1 MB chunk per read left ~16 MB of buffers for
  // the collector at the end of a 100,000-row import, when the heap is largest.
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

/**
 * The fingerprint of one source's input, or undefined when the source's runs cannot be skipped (its mapping
 * is not deterministic). Secrets in the configuration serialise as `[redacted]`, so they never enter it.
 */
export async function inputFingerprint(engine: Engine, sourceName: string, input: string): Promise<string | undefined> {
  const mapping = await engine.mapping(sourceName);
  if (!mapping.deterministic) return undefined;
  const hash = crypto.createHash('sha256');
  const part = (label: string, value: string | Buffer): void => {
    hash.update(`\n${label} ${Buffer.byteLength(value)}\n`);
    hash.update(value);
  };
  part('format', FINGERPRINT_FORMAT);
  part('version', pbxsyncVersion());
  part('source', sourceName);
  part('config', JSON.stringify(engine.config));
  // The text the mapping was compiled from. Were the file edited between this and the read, the run maps
  // with the newer text and records this older fingerprint: the next run compares instead of skipping.
  part('mapping', mapping.sourceHash);
  hash.update('\ninput\n');
  await hashFile(hash, input);
  return hash.digest('hex');
}

/** Why a run may skip, per source, with the fingerprints computed for it. */
export interface UnchangedCheck {
  /** The recorded inputs, when every source of the run may be skipped. */
  skip?: Map<string, ConvergedInput>;
  /** Fingerprint per source with an input (recorded after the run when it converged). */
  fingerprints: Map<string, string>;
}

/**
 * Decides whether a run can be skipped: every source has an input whose fingerprint was recorded, and the
 * target and the bindings are exactly as that run left them.
 */
export async function checkUnchanged(
  engine: Engine,
  request: { sources: string[]; inputs?: Record<string, string>; full: boolean; dryRun: boolean; approve: boolean; expectBasis?: string },
): Promise<UnchangedCheck> {
  const fingerprints = new Map<string, string>();
  if (request.dryRun || request.full || request.approve || request.expectBasis !== undefined) return { fingerprints };
  for (const name of request.sources) {
    const input = request.inputs?.[name];
    if (!input) return { fingerprints };
    const fingerprint = await inputFingerprint(engine, name, input);
    if (!fingerprint) return { fingerprints };
    fingerprints.set(name, fingerprint);
  }
  if (fingerprints.size === 0) return { fingerprints };
  const targetRevision = await engine.targetRevision();
  const bindingsRevision = engine.state.bindingsRevision();
  if (targetRevision === undefined || bindingsRevision === undefined) return { fingerprints };
  const skip = new Map<string, ConvergedInput>();
  for (const [name, fingerprint] of fingerprints) {
    const recorded = engine.state.converged(name);
    if (
      !recorded ||
      recorded.fingerprint !== fingerprint ||
      recorded.targetRevision !== targetRevision ||
      recorded.bindingsRevision !== bindingsRevision
    ) {
      return { fingerprints };
    }
    skip.set(name, recorded);
  }
  return { skip, fingerprints };
}

/** The plan and reads of a skipped run: nothing to do, every mapped user unchanged, and why. */
export async function skippedRun(
  engine: Engine,
  runId: string,
  recorded: Map<string, ConvergedInput>,
  inputs: Record<string, string>,
): Promise<{ plan: Plan; reads: MappedRead[] }> {
  const reads: MappedRead[] = [];
  const notes: string[] = [];
  let unchanged = 0;
  for (const [source, r] of recorded) {
    reads.push({
      source,
      mode: r.mode,
      complete: true,
      count: r.count,
      desired: [],
      desiredCount: r.desired,
      deleted: [],
      outOfScope: [],
      issues: [],
      removal: (await engine.mapping(source)).removal,
    });
    unchanged += r.desired;
    notes.push(
      `${source}: ${path.basename(inputs[source]!)} is identical to the input applied by run ${r.runId} at ${r.at}, and neither ` +
        'the PBX nor the bindings changed since: nothing to compare (`pbxsync sync --full` compares anyway)',
    );
  }
  const plan: Plan = {
    runId,
    createdAt: new Date().toISOString(),
    basis: '',
    sources: reads.map(({ desired: _desired, ...s }) => s),
    departments: [],
    operations: [],
    summary: { create: 0, update: 0, disable: 0, enable: 0, delete: 0, adopt: 0, unchanged, conflicts: 0, errors: 0 },
    held: null,
    issues: [],
    notes,
  };
  return { plan, reads };
}

/**
 * After a run: records, per source with a fingerprint, the input as converged when the run left nothing
 * undone for it, and forgets it otherwise. Call after the target was closed (the embedded store writes its
 * document on close) and the bindings were saved, so the revisions are the final ones.
 */
export async function recordConverged(
  engine: Engine,
  run: { runId: string; plan: Plan; report: ApplyReport; reads: MappedRead[]; fingerprints: Map<string, string>; inputs?: Record<string, string> },
): Promise<void> {
  if (run.fingerprints.size === 0) return;
  const converged =
    run.report.failed.length === 0 && !run.report.interrupted && run.report.skipped.length === 0 && run.plan.summary.conflicts === 0 && !run.plan.held;
  // The input must still be what was fingerprinted before the read (not rewritten while the run went on).
  const after = new Map<string, string | undefined>();
  if (converged) {
    for (const [name] of run.fingerprints) after.set(name, await inputFingerprint(engine, name, run.inputs![name]!));
  }
  const targetRevision = converged ? await engine.targetRevision() : undefined;
  const bindingsRevision = engine.state.bindingsRevision();
  const waiting = engine.state.sourcesWithDisabled();
  for (const [name, fingerprint] of run.fingerprints) {
    const read = run.reads.find((r) => r.source === name);
    const ok =
      converged &&
      read !== undefined &&
      read.complete &&
      // The plan's issues hold the read's own (rejected rows) and the planner's.
      !run.plan.issues.some((i) => i.source === name) &&
      !waiting.has(name) &&
      after.get(name) === fingerprint &&
      targetRevision !== undefined &&
      bindingsRevision !== undefined;
    engine.state.setConverged(
      name,
      ok
        ? {
            fingerprint,
            targetRevision: targetRevision!,
            bindingsRevision: bindingsRevision!,
            runId: run.runId,
            at: new Date().toISOString(),
            mode: read!.mode,
            count: read!.count,
            desired: read!.desiredCount,
          }
        : undefined,
    );
  }
}

import type { Plan, PlanState, SafetyPolicy } from './types.js';

/** Inputs of {@link applyGuards}. */
export interface GuardInput {
  state: PlanState;
  safety: SafetyPolicy;
  /** Users pbxsync manages now (bindings): the base of the percentage thresholds. */
  managedCount: number;
  /** The operator approved this plan (`pbxsync apply <plan>` or `--approve`): thresholds no longer hold it. */
  approved?: boolean;
}

/**
 * Applies the safety guards of DESIGN §6 invariant 4 and returns the plan with `held` set when it must not
 * be applied without approval:
 * - more deletes or disables than the configured count or percentage of managed users;
 * - a full read far smaller than the last good read of that source (a broken export, an LDAP filter typo).
 *
 * Removals from failed, incomplete or partial reads need no guard: the planner never produces them.
 * Approval lets every hold through; it is the operator's statement that the removals are intended.
 */
export function applyGuards(plan: Plan, input: GuardInput): Plan {
  if (input.approved) return { ...plan, held: null };
  const reasons: string[] = [];
  const { safety, managedCount } = input;

  for (const s of plan.sources) {
    if (s.mode !== 'full' || !s.complete) continue;
    const last = input.state.lastGoodCount[s.source];
    if (last === undefined || last <= 0) continue;
    if (s.count < safety.minSourceRatio * last) {
      reasons.push(
        `${s.source} returned ${s.count} identities, last good read had ${last} (minimum ${Math.round(safety.minSourceRatio * 100)} %): ` +
          'approve with `pbxsync apply <plan>` or `--approve` if the source really shrank',
      );
    }
  }

  const threshold = (verb: 'delete' | 'disable', count: number, max: number, maxPercent: number): void => {
    if (count === 0) return;
    const percent = managedCount > 0 ? (count * 100) / managedCount : 100;
    if (count > max || percent > maxPercent) {
      reasons.push(
        `would ${verb} ${count} users (threshold ${max} / ${maxPercent} %): approve with \`pbxsync apply <plan>\` or \`--approve\``,
      );
    }
  };
  const count = (kind: 'delete' | 'disable'): number => plan.operations.filter((o) => o.kind === kind).length;
  threshold('delete', count('delete'), safety.maxDeletes, safety.maxDeletePercent);
  threshold('disable', count('disable'), safety.maxDisables, safety.maxDisablePercent);

  if (plan.held) reasons.unshift(plan.held);
  return { ...plan, held: reasons.length ? reasons.join('; ') : null };
}

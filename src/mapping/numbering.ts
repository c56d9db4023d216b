import type { NumberingPolicy } from '../reconcile/types.js';
import type { NumberRange } from './types.js';

/** Emergency numbers no PBX may hand out as an extension, whatever the configuration says. */
export const BUILTIN_EMERGENCY = ['911', '112', '15', '17', '18', '999'] as const;

/** True when `ext` is an emergency number (built-in or configured). */
export function isEmergency(ext: string, numbering: Pick<NumberingPolicy, 'emergency'>): boolean {
  return (BUILTIN_EMERGENCY as readonly string[]).includes(ext) || numbering.emergency.includes(ext);
}

/** True when `ext` lies in a range (same digit count, numerically between the ends). */
export function inRange(ext: string, range: NumberRange): boolean {
  if (ext.length !== range.from.length) return false;
  return ext >= range.from && ext <= range.to;
}

/** True when `ext` is in one of the configured reserved ranges. */
export function isReserved(ext: string, numbering: Pick<NumberingPolicy, 'reserved'>): boolean {
  return numbering.reserved.some((r) => inRange(ext, r));
}

/**
 * Why `ext` may not be an extension, or undefined when it may: digits only, 2 to 10 digits (inferred from
 * 3CX, whose extensions are 2-9 digits), not an emergency number, not reserved.
 */
export function extensionProblem(ext: string, numbering: NumberingPolicy): string | undefined {
  if (!/^\d+$/.test(ext)) return `extension "${ext}" must be digits only`;
  if (ext.length < 2 || ext.length > 10) return `extension "${ext}" must have 2 to 10 digits`;
  if (isEmergency(ext, numbering)) return `extension ${ext} is an emergency number and can never be an extension`;
  if (isReserved(ext, numbering)) return `extension ${ext} is inside a reserved range`;
  return undefined;
}

/**
 * Allocates extensions "next free" over ranges, skipping emergency, reserved and in-use numbers. Keeps a
 * cursor per range, so allocating N numbers costs O(N + skipped) overall rather than O(N²).
 */
export class ExtensionAllocator {
  private readonly inUse: Set<string>;
  private readonly cursors = new Map<string, number>();

  constructor(private readonly options: { numbering: NumberingPolicy; inUse: Iterable<string> }) {
    this.inUse = new Set(options.inUse);
  }

  /** Marks a number as taken (e.g. a fixed extension planned for creation). */
  take(ext: string): void {
    this.inUse.add(ext);
  }

  /** True when the number is already taken. */
  isTaken(ext: string): boolean {
    return this.inUse.has(ext);
  }

  /** The next free number in the first range that has one, or undefined when all are full. */
  next(ranges: NumberRange[]): string | undefined {
    for (const range of ranges) {
      const width = range.from.length;
      const end = Number(range.to);
      const key = `${range.from}-${range.to}`;
      let n = this.cursors.get(key) ?? Number(range.from);
      for (; n <= end; n++) {
        const ext = String(n).padStart(width, '0');
        if (this.inUse.has(ext) || extensionProblem(ext, this.options.numbering)) continue;
        this.inUse.add(ext);
        this.cursors.set(key, n + 1);
        return ext;
      }
      this.cursors.set(key, n);
    }
    return undefined;
  }
}

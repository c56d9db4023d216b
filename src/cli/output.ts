import cliProgress from 'cli-progress';

/**
 * A progress bar on an interactive terminal only: never with `--json`, never when stderr is piped or
 * redirected (logs and CI output stay clean).
 */
export function createProgress(enabled: boolean): {
  update(phase: 'read' | 'apply', done: number, total?: number): void;
  stop(): void;
} {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  let current: string | undefined;
  let lastDraw = 0;
  return {
    update(phase, done, total) {
      if (phase !== current) {
        bar?.stop();
        current = phase;
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: total === undefined ? `${phase} {value} records` : `${phase} [{bar}] {value}/{total} {percentage}% eta {eta}s`,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total ?? 0, done);
      }
      const now = Date.now();
      if (now - lastDraw < 100 && done !== total) return;
      lastDraw = now;
      if (total !== undefined) bar?.setTotal(total);
      bar?.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}

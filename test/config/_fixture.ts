import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A stub mapping file: the config loader only checks that mapping files exist. */
export const STUB_MAPPING = '# stub mapping for config tests\n';

/**
 * Writes `files` (relative path → content) into a fresh temp folder and returns the folder. A
 * `mappings/test.yml` stub is always there, so configs can reference an existing mapping file.
 */
export async function fixture(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pbxsync-config-'));
  const all = { 'mappings/test.yml': STUB_MAPPING, ...files };
  for (const [name, content] of Object.entries(all)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  return dir;
}

/** Writes a service.yml (plus extra files) and returns its absolute path. */
export async function serviceFile(yaml: string, extra: Record<string, string> = {}): Promise<string> {
  const dir = await fixture({ 'service.yml': yaml, ...extra });
  return path.join(dir, 'service.yml');
}

/** Removes the common indentation of a template literal, so test YAML can be indented with the code. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '');
  const lines = text.replace(/^\n/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** The smallest valid `sources` block: one CSV source `hr` with the stub mapping and an `inbox` folder. */
export const MINIMAL_SOURCE = yaml`
  sources:
    - name: hr
      type: csv
      mapping: mappings/test.yml
      csv:
        folder: inbox
`;

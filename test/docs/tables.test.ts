/**
 * The tables of the documents agree with the code: README's CLI options with
 * the option definitions and the `serve` defaults, docs/protocol.md's error
 * table with the code table, and its method table with the generated services.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serveDefaults } from '../../cli/serve.js';
import { allCodes, codeInfo } from '../../common/codes.js';
import { services } from '../../generated/index.js';
import { optionDefinitions } from '../../server/options.js';

const repo = join(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(join(repo, file), 'utf8');

/** The rows of the Markdown table whose header row starts with `first`, as cells without backticks. */
function table(markdown: string, first: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^\\|\\s*${first}\\s*\\|`).test(l));
  if (start < 0) throw new Error(`no table starting with "${first}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim().replace(/`/g, '')),
    );
  }
  return rows;
}

describe('README.md', () => {
  const readme = read('README.md');

  it('starts with what leasegate is, then the two commands for a fresh machine', () => {
    const head = readme.split('\n').slice(0, 20).join('\n');
    expect(head).toMatch(/^# leasegate\n\nleasegate is an HTTP and JSON-RPC 2\.0 gateway/);
    expect(head).toContain('npm ci && npm start');
    expect(head).toContain('npm ci && npm test');
    // And they do what the README says: npm start serves, npm test builds and runs the whole suite.
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(scripts.start).toMatch(/dist\/cli\/main\.js serve$/);
    expect(scripts.test).toMatch(/build && vitest run$/);
  });

  it('lists every serve option with its environment variable and default, in --help order', () => {
    const rows = table(readme, 'Flag');
    expect(rows.map((r) => r[0])).toEqual(optionDefinitions.map((d) => `--${d.flag}`));
    for (const d of optionDefinitions) {
      const row = rows.find((r) => r[0] === `--${d.flag}`) as string[];
      expect(row[1], d.flag).toBe(d.env);
      const value = serveDefaults[d.key];
      expect(row[2], d.flag).toBe(value === undefined ? '(unset)' : String(value));
    }
  });
});

describe('docs/protocol.md', () => {
  const protocol = read('docs/protocol.md');

  it('gives every error code its HTTP status and JSON-RPC number from the code table', () => {
    const rows = table(protocol, 'Code');
    expect(rows.map((r) => r[0]).sort()).toEqual([...allCodes].sort());
    for (const [code, status, jsonRpc] of rows) {
      const info = codeInfo[code as keyof typeof codeInfo];
      expect([Number(status), Number(jsonRpc)], code).toEqual([info.httpStatus, info.jsonRpcCode]);
    }
  });

  it('lists every method of every service with whether it is safe to retry', () => {
    const rows = table(protocol, 'Service');
    const listed = rows.map((r) => `${r[0]}.${r[1]}`);
    const all = Object.values(services).flatMap((s) => Object.keys(s.methods).map((m) => `${s.name}.${m}`));
    expect(listed.sort()).toEqual(all.sort());
    for (const row of rows) {
      const service = Object.values(services).find((svc) => svc.name === row[0]);
      const method = Object.values(service?.methods ?? {}).find((m) => m.name === row[1]);
      // A method the schema calls non-idempotent may still be safe under a condition ("yes, when offset is given").
      const cell = row[3] ?? '';
      const safe = method?.idempotent
        ? cell === 'yes'
        : cell.startsWith('no') || cell.startsWith('yes, when');
      expect(safe, `${row[0]}.${row[1]}: "${cell}"`).toBe(true);
    }
  });

  it('keeps the section the idempotency engineer fills in', () => {
    expect(protocol).toContain('### Idempotency records: retention and bounds');
  });
});

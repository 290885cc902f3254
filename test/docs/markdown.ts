/**
 * Reads the fenced code blocks of the project's Markdown documents, and the
 * console sessions inside them, for the snippet tests.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Header } from '../../common/headers.js';

/** One fenced block: its language, the words after it (`norun`, `file=x`, ...), its text and line. */
export interface Block {
  readonly doc: string;
  readonly line: number;
  readonly lang: string;
  readonly attrs: ReadonlyMap<string, string>;
  readonly body: string;
}

/** The documents whose snippets are tested, relative to the repository. */
export const documents = ['README.md', 'docs/protocol.md'] as const;

/** The fenced blocks of one Markdown file, in order. */
export function blocksOf(repo: string, doc: string): Block[] {
  const lines = readFileSync(join(repo, doc), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S+)?(.*)$/.exec(lines[i] as string);
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] as string).startsWith('```'); i++) body.push(lines[i] as string);
    const attrs = new Map<string, string>();
    for (const word of (open[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
      const [k, v] = word.split('=', 2) as [string, string | undefined];
      attrs.set(k, v ?? '');
    }
    blocks.push({ doc, line: start + 1, lang: open[1] ?? '', attrs, body: `${body.join('\n')}\n` });
  }
  return blocks;
}

/** One `$ command` of a console block and the output shown under it. */
export interface Step {
  readonly command: string;
  readonly expected: string[];
}

/** Splits a console block into commands (`$ ` lines, `\` continued) and their shown output. */
export function stepsOf(block: Block): Step[] {
  const steps: { command: string; expected: string[] }[] = [];
  const lines = block.body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('$ ')) {
      let command = line.slice(2);
      while (command.endsWith('\\') && i + 1 < lines.length) command = `${command.slice(0, -1)}${lines[++i]}`;
      steps.push({ command, expected: [] });
    } else if (steps.length > 0 && line.trim() !== '') {
      steps[steps.length - 1]?.expected.push(line);
    }
  }
  return steps;
}

const idPattern = /\b[hl]_[A-Za-z0-9_-]{20,}/g;
const timePattern = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g;

/**
 * Numbers handle and lease ids in order of first appearance, so that the ids
 * shown in a document can be matched with (and replaced by) the real ones.
 */
export class IdMap {
  private readonly names = new Map<string, string>();
  /** Replaces ids with `<id1>`, `<id2>`, ... (stable for this map). */
  name(text: string): string {
    return text.replace(idPattern, (id) => {
      let n = this.names.get(id);
      if (n === undefined) {
        n = `<id${this.names.size + 1}>`;
        this.names.set(id, n);
      }
      return n;
    });
  }
  /** The id with the given name, if seen. */
  idOf(name: string): string | undefined {
    for (const [id, n] of this.names) if (n === name) return id;
    return undefined;
  }
  /** Every id seen. */
  ids(): string[] {
    return [...this.names.keys()];
  }
}

/** Normalises output for comparison: times, time-dependent counts, ids (through `ids`), CRs. */
export function normalise(text: string, ids: IdMap): string[] {
  return ids
    .name(text.replace(/\r/g, ''))
    .replace(timePattern, '<time>')
    .replace(/"remainingMs":\d+/g, '"remainingMs":<ms>')
    .replace(/^(lease-remaining-ms): \d+$/gim, '$1: <ms>')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

const headerLine = /^([A-Za-z][A-Za-z0-9-]*): /;

/** Headers whose presence is the contract's meaning: a document may not leave them out. */
const contractHeaders = new Set([Header.IdempotentReplayed, Header.RetryAfter].map((h) => h.toLowerCase()));

/** A real header line a document may leave out (Date, Connection, ...): any but the contract's own. */
const omissible = (line: string): boolean => {
  const name = headerLine.exec(line)?.[1];
  return name !== undefined && !contractHeaders.has(name.toLowerCase());
};

/**
 * Compares shown output with real output: the same lines in the same order,
 * except that real HTTP header lines the document leaves out (Date, ...) are skipped, unless they
 * are the contract's own (Idempotent-Replayed, Retry-After).
 * Returns a description of the first difference, or undefined.
 */
export function difference(expected: string[], actual: string[]): string | undefined {
  let a = 0;
  for (const want of expected) {
    while (a < actual.length && actual[a] !== want && omissible(actual[a] as string)) a++;
    if (actual[a] !== want) return `expected line:\n  ${want}\ngot:\n  ${actual[a] ?? '(end of output)'}`;
    a++;
  }
  const rest = actual.slice(a).filter((l) => !omissible(l));
  return rest.length === 0 ? undefined : `unexpected output:\n  ${rest.join('\n  ')}`;
}

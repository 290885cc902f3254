/**
 * The suite's command line: `node dist/bench/main.js [--quick] [--rounds N]
 * [--seconds S] [--warmup S] [--connections 1,32,128] [--only a,b] [--profile]`
 * (`npm run bench -- --quick`; `--help` lists them all).
 */
import { parseArgs } from 'node:util';
import type { SuiteSettings } from './suite-context.js';

/** The suite's sections, in run order. */
export const sectionNames = ['throughput', 'sequential', 'instructions', 'companions', 'profile'] as const;

/** One section's name. */
export type SectionName = (typeof sectionNames)[number];

/** What the command line asked for. */
export interface SuiteOptions {
  readonly settings: SuiteSettings;
  readonly sections: ReadonlySet<SectionName>;
  readonly quick: boolean;
}

/** The help text. */
export const usage = `usage: npm run bench -- [options]
  --quick               one short round of everything (a smoke run, ~2 min; its figures are not to be judged)
  --rounds N            rounds per variant, figures are medians (default 5)
  --seconds S           measured seconds per throughput run (default 3)
  --warmup S            warm-up seconds before each run (default 3)
  --connections LIST    connection counts (default 1,32,128)
  --calls N             sequential calls measured per round (default 5000)
  --only LIST           sections to run: ${sectionNames.join(', ')}
  --max-noise PCT       repeat a run when other processes took more than PCT% of a core (default 20)
  --retries N           repeats of a noisy run, the quietest kept (default 2; 0 with --quick)
  --max-wait S          seconds the suite may spend on waits and repeats in all (default 120; 20 with --quick)
  --profile             also profile leasegate (node --cpu-prof) under 32 connections with keys
  --profile-seconds S   profiled load seconds (default 10)
  --help`;

function positiveNumber(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!(n > 0)) throw new Error(`--${name} must be a number > 0, got "${raw}"`);
  return n;
}

function wholeNumber(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number >= 0, got "${raw}"`);
  return n;
}

/** Parses `argv` (without node and the script). */
export function parseSuiteOptions(argv: readonly string[]): SuiteOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      calls: { type: 'string' },
      only: { type: 'string' },
      profile: { type: 'boolean', default: false },
      'profile-seconds': { type: 'string' },
      'max-noise': { type: 'string' },
      retries: { type: 'string' },
      'max-wait': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const connections = (values.connections ?? '1,32,128')
    .split(',')
    .map((c) => positiveNumber('connections', c, 1));
  const calls = Math.floor(positiveNumber('calls', values.calls, quick ? 1_000 : 5_000));
  const settings: SuiteSettings = {
    // Five: the host has slow spells of ten seconds or more that can take two of three rounds of a variant.
    rounds: Math.floor(positiveNumber('rounds', values.rounds, quick ? 1 : 5)),
    seconds: positiveNumber('seconds', values.seconds, quick ? 2 : 3),
    // Three: after one second (~20 000 calls) V8 was still compiling the keyed path, on the server's
    // own core, and the keyed runs' CPU a call included it (a key cost 19.8 % after 1 s, 10.5 % after 3 s).
    warmupSeconds: positiveNumber('warmup', values.warmup, quick ? 0.5 : 3),
    connections,
    sequentialCalls: calls,
    sequentialWarmup: quick ? 1_000 : 3_000,
    fsyncSamples: quick ? 100 : 500,
    maxNoisePct: positiveNumber('max-noise', values['max-noise'], 20),
    noiseRetries: values.retries === undefined ? (quick ? 0 : 2) : wholeNumber('retries', values.retries),
    quietBudgetSeconds:
      values['max-wait'] === undefined ? (quick ? 20 : 120) : wholeNumber('max-wait', values['max-wait']),
    profileSeconds: positiveNumber('profile-seconds', values['profile-seconds'], quick ? 3 : 10),
  };
  let sections = new Set<SectionName>(['throughput', 'sequential', 'instructions', 'companions']);
  if (values.only !== undefined) {
    sections = new Set();
    for (const name of values.only.split(',')) {
      if (!(sectionNames as readonly string[]).includes(name)) {
        throw new Error(`--only takes ${sectionNames.join(', ')}; got "${name}"`);
      }
      sections.add(name as SectionName);
    }
  }
  if (values.profile) sections.add('profile');
  return { settings, sections, quick };
}

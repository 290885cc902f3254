/**
 * Summarises a .cpuprofile from the command line:
 * `node dist/bench/profile/cli.js /tmp/prof/CPU.x.cpuprofile [--requests N] [--top N]`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { remotePrintFocus } from './focus.js';
import { type CpuProfile, formatProfileSummary, summariseProfile } from './summarise.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string' }, top: { type: 'string' } },
});
const file = positionals[0];
if (!file) {
  console.error('usage: node dist/bench/profile/cli.js <file.cpuprofile> [--requests N] [--top N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const summary = summariseProfile(profile, {
  root: process.cwd(),
  focus: remotePrintFocus,
  ...(values.requests ? { requests: Number(values.requests) } : {}),
  ...(values.top ? { top: Number(values.top) } : {}),
});
console.log(formatProfileSummary(summary));

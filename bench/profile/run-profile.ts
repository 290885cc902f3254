/**
 * Profiles the hot path: a server child under `node --cpu-prof` at 32
 * connections (leasegate RemotePrint with a unique Idempotency-Key per
 * request, and the bare Fastify route beside it for comparison), then a
 * summary of the steady-state window (warm-up and shutdown left out). The
 * .cpuprofile files are kept in bench/results/profiles/<time>/<variant>/.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadResult } from '../load/http-load.js';
import { startNoiseMeter, waitForQuiet } from '../quiet.js';
import {
  loader,
  openLeasegateHandle,
  serverConfig,
  type Variant,
  variantById,
} from '../sections/variants.js';
import { spawnServer } from '../servers/spawn.js';
import type { SuiteContext } from '../suite-context.js';
import { remotePrintFocus } from './focus.js';
import { type CpuProfile, type ProfileSummary, summariseProfile } from './summarise.js';

/** What profiling one variant leaves. */
export interface ProfileResult {
  readonly variant: string;
  readonly label: string;
  readonly file: string;
  readonly connections: number;
  readonly seconds: number;
  readonly reqPerSec: number;
  /** Other processes' CPU use during the profiled load, in % of one core. */
  readonly otherCpuPct: number | undefined;
  readonly summary: ProfileSummary;
}

/** The variants profiled by default: leasegate with and without keys, and the bare route as the yardstick. */
export const profiledVariants: readonly string[] = ['leasegate-keys', 'leasegate', 'bare'];

const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

async function profileOne(
  ctx: SuiteContext,
  root: string,
  variant: Variant,
  profileDir: string,
): Promise<ProfileResult> {
  const connections = 32;
  const dir = join(ctx.workDir, `profile-${variant.id}`);
  mkdirSync(profileDir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const waited =
    ctx.quietBudget.seconds > 0 ? await waitForQuiet(15, Math.min(30, ctx.quietBudget.seconds)) : 0;
  ctx.quietBudget.spend(waited);
  const server = await spawnServer(variant.server, serverConfig(variant, dir), ctx.pinning, {
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
  });
  let window: { from: number; to: number };
  let result: LoadResult;
  let otherCpuPct: number | undefined;
  try {
    const handle = variant.server === 'leasegate' ? await openLeasegateHandle(server.port) : server.handle;
    const load = await loader(variant, server, handle, connections);
    try {
      await load.run(ctx.settings.warmupSeconds);
      const from = nowMicros();
      const noise = startNoiseMeter([server.pid]);
      result = await load.run(ctx.settings.profileSeconds);
      otherCpuPct = noise.stop();
      window = { from, to: nowMicros() };
    } finally {
      load.close();
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const name = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  if (name === undefined) throw new Error(`no .cpuprofile written in ${profileDir}`);
  const file = join(profileDir, name);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const summary = summariseProfile(profile, {
    window,
    requests: result.ok,
    root,
    top: 30,
    focus: remotePrintFocus,
  });
  return {
    variant: variant.id,
    label: variant.label,
    file,
    connections,
    seconds: result.seconds,
    reqPerSec: result.ok / result.seconds,
    otherCpuPct,
    summary,
  };
}

/** Profiles each of `ids` (default: leasegate with keys, then bare Fastify) and summarises them. */
export async function runProfiles(
  ctx: SuiteContext,
  root: string,
  ids: readonly string[] = profiledVariants,
): Promise<ProfileResult[]> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const results: ProfileResult[] = [];
  for (const id of ids) {
    const variant = variantById(id);
    ctx.log(`  ${variant.label}: ${ctx.settings.profileSeconds} s under node --cpu-prof`);
    results.push(await profileOne(ctx, root, variant, join(ctx.resultsDir, 'profiles', stamp, variant.id)));
  }
  return results;
}

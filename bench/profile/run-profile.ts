/**
 * Profiles the leasegate hot path: a leasegate child under
 * `node --cpu-prof`, RemotePrint with a unique Idempotency-Key per request at
 * 32 connections, then a summary of the steady-state window (warm-up and
 * shutdown left out). The .cpuprofile is kept in bench/results/profiles/.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { runHttpLoad } from '../load/http-load.js';
import { startNoiseMeter, waitForQuiet } from '../quiet.js';
import { spawnServer } from '../servers/spawn.js';
import { benchLine, type SuiteContext } from '../suite-context.js';
import { remotePrintFocus } from './focus.js';
import { type CpuProfile, type ProfileSummary, summariseProfile } from './summarise.js';

/** What the profile section leaves. */
export interface ProfileResult {
  readonly file: string;
  readonly connections: number;
  readonly seconds: number;
  readonly reqPerSec: number;
  /** Other processes' CPU use during the profiled load, in % of one core. */
  readonly otherCpuPct: number | undefined;
  readonly summary: ProfileSummary;
}

const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

/** Runs the profiled load and summarises it. */
export async function runProfile(ctx: SuiteContext, root: string): Promise<ProfileResult> {
  const connections = 32;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const profileDir = join(ctx.resultsDir, 'profiles', stamp);
  const dir = join(ctx.workDir, 'profile');
  mkdirSync(profileDir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  await waitForQuiet();
  const server = await spawnServer(
    'leasegate',
    { root: join(dir, 'root'), stateDir: join(dir, 'state') },
    ctx.pinning,
    { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] },
  );
  let window: { from: number; to: number };
  let result: Awaited<ReturnType<typeof runHttpLoad>>;
  let otherCpuPct: number | undefined;
  try {
    const open = await request(`http://127.0.0.1:${server.port}/v1/Files/RemoteOpen`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'profile.log', mode: 'append', create: true }),
    });
    const { handle } = (await open.body.json()) as { handle: string };
    const load = (seconds: number) =>
      runHttpLoad({
        url: `http://127.0.0.1:${server.port}`,
        path: '/v1/Files/RemotePrint',
        body: JSON.stringify({ handle, data: benchLine }),
        connections,
        seconds,
        uniqueKeys: true,
      });
    await load(ctx.settings.warmupSeconds);
    const from = nowMicros();
    const noise = startNoiseMeter([server.pid]);
    result = await load(ctx.settings.profileSeconds);
    otherCpuPct = noise.stop();
    window = { from, to: nowMicros() };
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
    file,
    connections,
    seconds: result.seconds,
    reqPerSec: result.ok / result.seconds,
    otherCpuPct,
    summary,
  };
}

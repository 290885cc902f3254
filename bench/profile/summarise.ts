/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and says where the time
 * went: self time by function and by area (leasegate, each package, node
 * internals, GC), and inclusive time of the functions on the stacks.
 * Profile timestamps are CLOCK_MONOTONIC µs, the clock of
 * `process.hrtime.bigint()`, so a window measured in another process applies.
 */

/** The parts of a .cpuprofile this reads. */
export interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One row of a ranking. */
export interface TimeShare {
  readonly name: string;
  /** µs in the window. */
  readonly micros: number;
  /** Share of busy (non-idle) time, in %. */
  readonly busyPct: number;
  /** µs per request, when the request count is known. */
  readonly microsPerRequest?: number;
}

/** Where the time went. */
export interface ProfileSummary {
  /** Sampled µs in the window, idle included. */
  readonly totalMicros: number;
  readonly idleMicros: number;
  readonly busyMicros: number;
  readonly requests?: number;
  /** Busy µs per request. */
  readonly busyMicrosPerRequest?: number;
  readonly bySelfFunction: TimeShare[];
  readonly byArea: TimeShare[];
  readonly byInclusiveFunction: TimeShare[];
  /** Inclusive time of each focus group, in the order given. */
  readonly byFocus: TimeShare[];
}

/** A named group of frames whose inclusive time is reported (a sample counts once if any of its frames match). */
export interface FocusGroup {
  readonly label: string;
  readonly matches: (functionName: string, url: string) => boolean;
}

/** Options of `summariseProfile`. */
export interface SummariseOptions {
  /** Groups of frames to report inclusive time for (hot-path candidates). */
  readonly focus?: readonly FocusGroup[];
  /** Only samples in [from, to] (CLOCK_MONOTONIC µs) count. */
  readonly window?: { readonly from: number; readonly to: number };
  /** Requests served in the window, for per-request figures. */
  readonly requests?: number;
  /** Rows per ranking. */
  readonly top?: number;
  /** Repository root, stripped from file URLs. */
  readonly root?: string;
}

const special = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function shortUrl(url: string, root: string | undefined): string {
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + '/node_modules/'.length);
  if (root && u.startsWith(root)) u = u.slice(root.length).replace(/^\//, '');
  return u;
}

/** The area a frame belongs to: a package, `node` internals, leasegate's own folders, or V8's specials. */
function areaOf(name: string, url: string, root: string | undefined): string {
  if (special.has(name)) return name;
  if (url === '') return '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const short = shortUrl(url, root);
  if (url.includes('/node_modules/')) {
    const parts = short.split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? short);
  }
  // Compiled leasegate code: dist/server/rpc/x.js → leasegate server/rpc
  const parts = short.replace(/^dist\//, '').split('/');
  return `leasegate ${parts.slice(0, Math.min(2, parts.length - 1)).join('/')}`;
}

function rank(
  totals: Map<string, number>,
  busy: number,
  requests: number | undefined,
  top: number,
): TimeShare[] {
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, micros]) => ({
      name,
      micros,
      busyPct: busy > 0 ? (micros / busy) * 100 : 0,
      ...(requests ? { microsPerRequest: micros / requests } : {}),
    }));
}

const add = (map: Map<string, number>, key: string, value: number) =>
  map.set(key, (map.get(key) ?? 0) + value);

/** Sums a profile's samples by function (self and inclusive) and by area. */
export function summariseProfile(profile: CpuProfile, options: SummariseOptions = {}): ProfileSummary {
  const { window, requests, top = 25, root, focus = [] } = options;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (id: number): string => {
    const { functionName, url, lineNumber } = byId.get(id)?.callFrame ?? {
      functionName: '?',
      url: '',
      lineNumber: 0,
    };
    const name = functionName || '(anonymous)';
    return url === '' ? name : `${name}  ${shortUrl(url, root)}:${lineNumber + 1}`;
  };

  const self = new Map<string, number>();
  const area = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const focused = new Map<string, number>(focus.map((g) => [g.label, 0]));
  let total = 0;
  let idle = 0;
  // Sample i lasts until sample i+1 (the next time delta); the last one has no known length and is dropped.
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length - 1; i++) {
    time += profile.timeDeltas[i] ?? 0;
    const micros = profile.timeDeltas[i + 1] ?? 0;
    if (window && (time < window.from || time > window.to)) continue;
    const id = profile.samples[i] as number;
    const frame = byId.get(id)?.callFrame;
    const name = frame?.functionName ?? '?';
    total += micros;
    if (name === '(idle)') {
      idle += micros;
      continue;
    }
    add(self, label(id), micros);
    add(area, areaOf(name, frame?.url ?? '', root), micros);
    const seen = new Set<string>();
    const hit = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = label(at);
      if (key === '(root)' || seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, micros);
      const callFrame = byId.get(at)?.callFrame;
      for (const group of focus) {
        if (!hit.has(group.label) && callFrame && group.matches(callFrame.functionName, callFrame.url)) {
          hit.add(group.label);
          add(focused, group.label, micros);
        }
      }
    }
  }
  const busy = total - idle;
  return {
    totalMicros: total,
    idleMicros: idle,
    busyMicros: busy,
    ...(requests ? { requests, busyMicrosPerRequest: busy / requests } : {}),
    bySelfFunction: rank(self, busy, requests, top),
    byArea: rank(area, busy, requests, top),
    byInclusiveFunction: rank(inclusive, busy, requests, top),
    byFocus: rank(focused, busy, requests, focus.length).sort(
      (a, b) => focus.findIndex((g) => g.label === a.name) - focus.findIndex((g) => g.label === b.name),
    ),
  };
}

/** The summary as text, for the console and the report. */
export function formatProfileSummary(summary: ProfileSummary): string {
  const lines: string[] = [];
  const ms = (us: number) => `${(us / 1000).toFixed(0)} ms`;
  lines.push(
    `sampled ${ms(summary.totalMicros)}: busy ${ms(summary.busyMicros)}, idle ${ms(summary.idleMicros)}` +
      (summary.requests
        ? `; ${summary.requests} requests, ${summary.busyMicrosPerRequest?.toFixed(1)} µs busy per request`
        : ''),
  );
  const table = (title: string, rows: readonly TimeShare[]) => {
    lines.push('', title, `  ${'% busy'.padStart(6)}  ${'µs/req'.padStart(6)}  name`);
    for (const r of rows) {
      const perReq = r.microsPerRequest === undefined ? '' : r.microsPerRequest.toFixed(2);
      lines.push(`  ${r.busyPct.toFixed(1).padStart(6)}  ${perReq.padStart(6)}  ${r.name}`);
    }
  };
  if (summary.byFocus.length > 0) table('hot-path candidates (inclusive)', summary.byFocus);
  table('self time by area', summary.byArea);
  table('self time by function', summary.bySelfFunction);
  table('inclusive time by function', summary.byInclusiveFunction);
  return lines.join('\n');
}

/** Plain-text tables for the console: left-aligned first column, the rest right-aligned. */

/** Renders `rows` under `headers`, columns padded to their widest cell. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const ragged = rows.find((r) => r.length !== headers.length);
  if (ragged !== undefined) {
    throw new Error(
      `table row has ${ragged.length} cells for ${headers.length} headers: ${ragged.join(' | ')}`,
    );
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** A number with `digits` decimals, or a dash when it is not a finite number. */
export function fixed(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? '-' : (bytes / 1_048_576).toFixed(1);
}

/**
 * One generator run: reads a schemas folder and (re)writes, deterministically,
 * `schemas.ts`, `types.ts`, `services.ts`, `index.ts` and `openrpc.json` in the
 * output folder, plus the OpenAPI document.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { ServiceDefinitions } from '../common/service-table.js';
import type { DocumentInfo } from './documents/info.js';
import { buildOpenApiDocument, stringifyOpenApiYaml } from './documents/openapi.js';
import { buildOpenRpcDocument, stringifyOpenRpcJson } from './documents/openrpc.js';
import { emitIndexFile } from './emit/index-file.js';
import { emitSchemasFile } from './emit/schemas-file.js';
import { defaultedFields, emitServicesFile } from './emit/services-file.js';
import { bannerComment } from './emit/ts-source.js';
import { emitTypesFile } from './emit/types-file.js';
import { loadDefinitions } from './input/load.js';

/** Options of one generator run. */
export interface GenerateOptions {
  /** Folder of `*.schema.json` and `*.service.json` files. */
  readonly schemasDir: string;
  /** Folder the TypeScript files and openrpc.json are written to (created if missing). */
  readonly outDir: string;
  /** Where to write the OpenAPI document (default `<outDir>/openapi.yaml`). */
  readonly openapiPath?: string;
  /** `$id` of the schema bundle (default `<basename of schemasDir>.json`). */
  readonly id?: string;
  /** `info.title` of both documents (default `leasegate`). */
  readonly title?: string;
  /** `info.version` of both documents (default `0.1.0`). */
  readonly version?: string;
}

/** What a run wrote: absolute paths, sorted. */
export interface GenerateResult {
  readonly files: string[];
}

/** Reads `options.schemasDir` and writes every output; throws a CodegenError on bad input, before writing anything. */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const schemasDir = resolve(options.schemasDir);
  const outDir = resolve(options.outDir);
  const openapiPath = resolve(options.openapiPath ?? join(outDir, 'openapi.yaml'));
  const loaded = await loadDefinitions(schemasDir, { id: options.id ?? `${basename(schemasDir)}.json` });
  // Shown in banners: relative to the working folder, so that it is the same on every machine.
  const source = relative(process.cwd(), schemasDir).split(sep).join('/') || '.';
  const defs: ServiceDefinitions = loaded;
  const info: DocumentInfo = {
    ...(options.title === undefined ? {} : { title: options.title }),
    ...(options.version === undefined ? {} : { version: options.version }),
  };

  const outputs = new Map<string, string>([
    [join(outDir, 'schemas.ts'), emitSchemasFile(loaded.schemas, source)],
    [join(outDir, 'types.ts'), await emitTypesFile(loaded.schemas.definitions, source)],
    [
      join(outDir, 'services.ts'),
      emitServicesFile(Object.values(loaded.services), source, defaultedFields(loaded.schemas.definitions)),
    ],
    [join(outDir, 'index.ts'), emitIndexFile(source)],
    [join(outDir, 'openrpc.json'), stringifyOpenRpcJson(buildOpenRpcDocument(defs, info))],
    [
      openapiPath,
      `# ${bannerComment(source).slice(3)}\n${stringifyOpenApiYaml(buildOpenApiDocument(defs, info))}`,
    ],
  ]);

  await mkdir(outDir, { recursive: true });
  await removeStaleOutputs(outDir, outputs, source);
  for (const [path, text] of outputs) {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }
  return { files: [...outputs.keys()].sort() };
}

/**
 * Deletes files an earlier run wrote into `outDir` that this run does not
 * write (recognised by the banner). Anything else in the folder is left alone.
 */
async function removeStaleOutputs(
  outDir: string,
  outputs: ReadonlyMap<string, string>,
  source: string,
): Promise<void> {
  const banner = bannerComment(source).split(' from ')[0] ?? '';
  for (const entry of await readdir(outDir, { withFileTypes: true })) {
    const path = join(outDir, entry.name);
    if (!entry.isFile() || outputs.has(path) || !entry.name.endsWith('.ts')) continue;
    const head = (await readFile(path, 'utf8')).slice(0, banner.length);
    if (head === banner) await rm(path);
  }
}

/**
 * Command line of the generator: `tsx codegen/main.ts --schemas DIR --out DIR
 * [--openapi FILE] [--id ID] [--title T] [--version V]`, also run by
 * `leasegate gen` through runGenCommand.
 */
import { realpathSync } from 'node:fs';
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CodegenError } from './errors.js';
import { generate } from './generate.js';

/** Usage text of the gen command. */
export const genUsage = `Usage: leasegate gen --schemas DIR --out DIR [--openapi FILE] [--id ID] [--title TITLE] [--version VERSION]

Compiles every *.schema.json and *.service.json file of DIR into types, service
tables, schemas, openrpc.json and an OpenAPI document.

  --schemas DIR     folder of *.schema.json and *.service.json files
  --out DIR         output folder (generated files are rewritten)
  --openapi FILE    OpenAPI document to write (default: <out>/openapi.yaml)
  --id ID           $id of the schema bundle (default: <basename of schemas>.json)
  --title TITLE     info.title of the documents (default: leasegate)
  --version VERSION info.version of the documents (default: 0.1.0)
`;

/** Runs the gen command on `argv` (arguments after the command name); resolves to the exit code. */
export async function runGenCommand(argv: string[]): Promise<number> {
  let values: { [name: string]: string | boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        schemas: { type: 'string' },
        out: { type: 'string' },
        openapi: { type: 'string' },
        id: { type: 'string' },
        title: { type: 'string' },
        version: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`leasegate gen: ${(error as Error).message}\n\n${genUsage}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(genUsage);
    return 0;
  }
  const str = (name: string): string | undefined =>
    typeof values[name] === 'string' ? values[name] : undefined;
  const schemasDir = str('schemas');
  const outDir = str('out');
  if (schemasDir === undefined || outDir === undefined) {
    process.stderr.write(`leasegate gen: --schemas and --out are required\n\n${genUsage}`);
    return 2;
  }
  try {
    const openapiPath = str('openapi');
    const id = str('id');
    const title = str('title');
    const version = str('version');
    const { files } = await generate({
      schemasDir,
      outDir,
      ...(openapiPath === undefined ? {} : { openapiPath }),
      ...(id === undefined ? {} : { id }),
      ...(title === undefined ? {} : { title }),
      ...(version === undefined ? {} : { version }),
    });
    for (const file of files) process.stdout.write(`wrote ${relative(process.cwd(), file)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof CodegenError) {
      process.stderr.write(`leasegate gen: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

function isMainModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMainModule()) process.exitCode = await runGenCommand(process.argv.slice(2));

#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=50
import { runServe } from './serve.js';

const usage = `Usage: leasegate <command> [options]

Commands:
  serve   run the gateway (leasegate serve --help for its options)
  gen     generate types, server interfaces, client, openapi.yaml and openrpc.json
          from JSON Schema: leasegate gen --schemas DIR --out DIR [--openapi FILE]
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return runServe(rest);
    case 'gen': {
      const { runGenCommand } = await import('../codegen/main.js');
      return runGenCommand(rest);
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(usage);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`leasegate: unknown command "${command}"\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `leasegate: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);

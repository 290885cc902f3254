/**
 * Every snippet of README.md and docs/protocol.md runs, and answers what the
 * document shows. Console sessions run with real curl against a server on a
 * free port (the documents' 127.0.0.1:8080 is rewritten); a document's
 * sessions and programs share one server, in document order, as a reader who
 * follows it top to bottom against one `npm start` would (a session with
 * `tokens=` gets a server of its own with those tokens), the ids the
 * document shows are replaced by the real ones as the session goes; sh blocks
 * run with bash; TypeScript blocks run with tsx, importing `leasegate/client`
 * and `leasegate/server` from this repository, after type-checking them as a
 * strict project would; their output is compared with the text block that follows. json blocks are
 * parsed (and written out when they name a file=); text blocks are output or pictures. Blocks marked
 * `norun` are skipped, each for a reason listed below.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { repo, tsxLoader } from '../helpers/server-process.js';
import { type Block, blocksOf, difference, documents, IdMap, normalise, stepsOf } from './markdown.js';

const run = promisify(execFile);
const shownAddress = '127.0.0.1:8080';

/** The snippets that are not run, on purpose, by their first line: each needs a reason. */
const notRun = new Map<string, string>([
  ['npm ci && npm start', 'installs and starts a long-running server on port 8080'],
  ['npm ci && npm test', 'the test command itself'],
  [
    'npx leasegate serve --root /srv/files --socket /tmp/leasegate.sock',
    'long-running servers; test/server/cli.test.ts runs --socket alone and beside TCP (through undici, not curl)',
  ],
]);

const firstLine = (b: Block) => (b.body.split('\n')[0] ?? '').replace(/\s+#.*$/, '').trim();
const where = (b: Block) => `${b.doc}:${b.line}`;

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Rewrites a command or program of a document to run here. */
function rewrite(text: string, port: number): string {
  return text
    .replaceAll(shownAddress, `127.0.0.1:${port}`)
    .replace(/port: 8080\b/g, `port: ${port}`)
    .replace(/\bnpx leasegate /g, `${process.execPath} --import ${tsxLoader} ${join(repo, 'cli/main.ts')} `)
    .replaceAll("'leasegate/client'", `'${pathToFileURL(join(repo, 'client/index.ts')).href}'`)
    .replaceAll("'leasegate/server'", `'${pathToFileURL(join(repo, 'server/index.ts')).href}'`);
}

/** Type-checks programs of a document as a user's strict NodeNext project would, `leasegate/*` mapped to this repository. */
function typeErrors(files: string[]): string[] {
  const program = ts.createProgram(files, {
    strict: true,
    noUncheckedIndexedAccess: true,
    target: ts.ScriptTarget.ES2023,
    lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
    typeRoots: [join(repo, 'node_modules/@types')],
    baseUrl: repo,
    paths: { 'leasegate/client': ['client/index.ts'], 'leasegate/server': ['server/index.ts'] },
  });
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

async function sh(command: string, cwd: string): Promise<string> {
  const { stdout } = await run('bash', ['-c', command], { cwd, timeout: 60_000, maxBuffer: 16 << 20 });
  return stdout;
}

for (const doc of documents) {
  describe(doc, () => {
    const blocks = blocksOf(repo, doc);
    let dir: string;
    let shared: TestServer | undefined;
    /** The document's server, started by the first block that needs it. */
    const sharedServer = async (): Promise<TestServer> => {
      shared ??= await startTestServer();
      return shared;
    };
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'leasegate-snippets-'));
      await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
    });
    afterAll(async () => {
      await shared?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('marks only the expected snippets norun', () => {
      for (const b of blocks.filter((x) => x.attrs.has('norun'))) {
        expect(notRun.has(firstLine(b)), `${where(b)}: "${firstLine(b)}" is norun without a reason`).toBe(
          true,
        );
      }
    });

    // Blocks run in document order and share one working folder, so that a file written by
    // one (```json file=...) or generated by one (npx leasegate gen) serves the next.
    for (const [index, block] of blocks.entries()) {
      if (block.attrs.has('norun')) continue;
      const next = blocks[index + 1];

      if (block.lang === 'json') {
        it(`${where(block)}: json ${block.attrs.get('file') ?? ''} is valid JSON`, async () => {
          expect(() => JSON.parse(block.body)).not.toThrow();
          const file = block.attrs.get('file');
          if (file !== undefined) {
            await mkdir(dirname(join(dir, file)), { recursive: true });
            await writeFile(join(dir, file), block.body);
          }
        });
      } else if (block.lang === 'console') {
        it(`${where(block)}: the session answers as shown`, async () => {
          const tokens = block.attrs.get('tokens');
          const server = tokens ? await startTestServer({ tokens: join(dir, tokens) }) : await sharedServer();
          try {
            const port = Number(new URL(server.url).port);
            const shown = new IdMap();
            const real = new IdMap();
            for (const step of stepsOf(block)) {
              let command = rewrite(step.command, port);
              // Ids the document shows stand for the ones this session got.
              for (const id of shown.ids()) {
                const name = shown.name(id);
                const actual = real.idOf(name);
                if (actual !== undefined) command = command.replaceAll(id, actual);
              }
              const output = await sh(command, dir);
              const problem = difference(normalise(step.expected.join('\n'), shown), normalise(output, real));
              expect(problem, `${where(block)}: $ ${step.command}\n${problem}`).toBeUndefined();
            }
          } finally {
            if (server !== shared) await server.close();
          }
        });
      } else if (block.lang === 'sh') {
        it(`${where(block)}: the commands succeed`, async () => {
          const port = await freePort();
          await sh(`set -euo pipefail\n${rewrite(block.body, port)}`, dir);
        });
      } else if (block.lang === 'ts') {
        const output = next?.lang === 'text' ? next : undefined;
        it(`${where(block)}: the program runs${output ? ' and prints what the document shows' : ''}`, async () => {
          const ownServer = block.attrs.has('own-server');
          const server = ownServer ? undefined : await sharedServer();
          const port = server ? Number(new URL(server.url).port) : await freePort();
          // As written (for the type checker), and rewritten to run here.
          const asWritten = join(dir, `snippet-${block.line}.check.mts`);
          await writeFile(asWritten, block.body);
          expect(typeErrors([asWritten])).toEqual([]);
          const file = join(dir, `snippet-${block.line}.mts`);
          await writeFile(file, rewrite(block.body, port));
          const { stdout } = await run(process.execPath, ['--import', tsxLoader, file], {
            cwd: dir,
            timeout: 60_000,
          });
          if (output) {
            const ids = new IdMap();
            expect(normalise(stdout, ids)).toEqual(normalise(output.body, new IdMap()));
          }
        });
      } else if (block.lang === 'text') {
        // Output of the program above it, or a picture of a folder tree: nothing to run.
      } else {
        it(`${where(block)}: has a language the snippet test knows`, () => {
          expect.fail(
            `${where(block)}: unknown snippet language "${block.lang}"; mark it norun or teach this test`,
          );
        });
      }
    }
  });
}

describe('the norun list', () => {
  it('names only snippets that are still in the documents and marked norun', () => {
    const marked = new Set(
      documents.flatMap((doc) =>
        blocksOf(repo, doc)
          .filter((b) => b.attrs.has('norun'))
          .map(firstLine),
      ),
    );
    expect([...notRun.keys()].filter((line) => !marked.has(line))).toEqual([]);
  });
});

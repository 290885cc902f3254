/**
 * The practical bound: one Fastify route with a JSON Schema body appending the
 * data to an already open file with an async FileHandle.write, as a typical
 * developer would write it. Config: `{"file": "/path/to/append.log"}`.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { announce, closeOnStop, readConfig } from './child-protocol.js';

/** The handle id the route serves. */
export const bareHandle = 'h_bare';

interface Config {
  file: string;
}

interface OpenFile {
  readonly fh: FileHandle;
  position: number;
}

const config = readConfig<Config>();
const file = config.file ?? 'bare-append.log';
const fh = await open(file, 'a');
const files = new Map<string, OpenFile>([[bareHandle, { fh, position: (await fh.stat()).size }]]);

const app = Fastify();
app.post<{ Body: { handle: string; data: string } }>(
  '/append',
  {
    schema: {
      body: {
        type: 'object',
        required: ['handle', 'data'],
        additionalProperties: false,
        properties: { handle: { type: 'string' }, data: { type: 'string' } },
      },
      response: {
        200: {
          type: 'object',
          properties: { bytesWritten: { type: 'integer' }, offset: { type: 'integer' } },
        },
      },
    },
  },
  async (request, reply) => {
    const open = files.get(request.body.handle);
    if (open === undefined) return reply.code(404).send({ error: 'no such handle' });
    const bytes = Buffer.from(request.body.data);
    const offset = open.position;
    open.position += bytes.length;
    const { bytesWritten } = await open.fh.write(bytes);
    return { bytesWritten, offset };
  },
);

await app.listen({ host: '127.0.0.1', port: 0 });
announce((app.server.address() as AddressInfo).port, bareHandle);
closeOnStop(async () => {
  await app.close();
  await fh.close();
});

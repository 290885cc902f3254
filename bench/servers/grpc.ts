/**
 * gRPC (@grpc/grpc-js) unary RemotePrint doing the same append as the bare
 * Fastify route (async FileHandle.write on an already open file).
 * Config: `{"file": "/path/to/append.log"}`.
 */
import { open } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { announce, closeOnStop, readConfig } from './child-protocol.js';
import { type GrpcPrintRequest, type GrpcPrintResponse, loadAppendService } from './grpc-proto.js';

/** The handle id the service serves. */
export const grpcHandle = 'h_grpc';

const config = readConfig<{ file: string }>();
const fh = await open(config.file ?? 'grpc-append.log', 'a');
let position = (await fh.stat()).size;

const { definition } = loadAppendService();
const server = new grpc.Server();
server.addService(definition, {
  RemotePrint(
    call: grpc.ServerUnaryCall<GrpcPrintRequest, GrpcPrintResponse>,
    callback: grpc.sendUnaryData<GrpcPrintResponse>,
  ) {
    const { handle, data } = call.request;
    if (handle !== grpcHandle) {
      callback({ code: grpc.status.NOT_FOUND, details: 'no such handle' });
      return;
    }
    const bytes = Buffer.from(data);
    const offset = position;
    position += bytes.length;
    fh.write(bytes).then(
      ({ bytesWritten }) => callback(null, { bytesWritten, offset }),
      (error: Error) => callback({ code: grpc.status.INTERNAL, details: error.message }),
    );
  },
});

const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
    error ? reject(error) : resolve(bound),
  ),
);
announce(port, grpcHandle);
closeOnStop(async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await fh.close();
});

/**
 * The small gRPC service the seed's system would have used: Files.RemotePrint
 * (handle, data) → (bytesWritten, offset). The .proto text is embedded so the
 * compiled suite in dist/ needs no file beside it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The service definition, as a .proto file would hold it. */
export const appendProto = `syntax = "proto3";
package leasegate.bench;

service Files {
  rpc RemotePrint (RemotePrintRequest) returns (RemotePrintResponse);
}

message RemotePrintRequest {
  string handle = 1;
  string data = 2;
}

message RemotePrintResponse {
  uint32 bytes_written = 1;
  uint64 offset = 2;
}
`;

/** RemotePrint's request as grpc-js hands it over (fields camelCased by proto-loader). */
export interface GrpcPrintRequest {
  handle: string;
  data: string;
}

/** RemotePrint's response. */
export interface GrpcPrintResponse {
  bytesWritten: number;
  offset: number;
}

/** The client constructor and service definition of the bench `Files` service. */
export interface AppendService {
  readonly Client: grpc.ServiceClientConstructor;
  readonly definition: grpc.ServiceDefinition;
}

/** Loads the embedded proto (through a temporary file: proto-loader reads files). */
export function loadAppendService(): AppendService {
  const dir = mkdtempSync(join(tmpdir(), 'leasegate-bench-proto-'));
  try {
    const file = join(dir, 'append.proto');
    writeFileSync(file, appendProto);
    const definition = protoLoader.loadSync(file, { keepCase: false, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      leasegate: { bench: { Files: grpc.ServiceClientConstructor } };
    };
    const Client = pkg.leasegate.bench.Files;
    return { Client, definition: Client.service };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

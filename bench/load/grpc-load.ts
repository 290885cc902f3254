/**
 * gRPC load: a grpc-js client keeping `concurrency` unary RemotePrint calls in
 * flight for the duration (one channel, as a grpc-js user would have),
 * counting completed calls and their latencies. One client serves the
 * warm-up and the measured load, so the measured one starts warm.
 */
import * as grpc from '@grpc/grpc-js';
import { type GrpcPrintRequest, type GrpcPrintResponse, loadAppendService } from '../servers/grpc-proto.js';
import { Samples } from '../stats.js';
import type { LoadResult } from './http-load.js';

type PrintClient = grpc.Client & {
  RemotePrint(
    request: GrpcPrintRequest,
    callback: grpc.requestCallback<GrpcPrintResponse>,
  ): grpc.ClientUnaryCall;
};

/** A connected gRPC load generator. */
export interface GrpcLoader {
  /** Keeps `concurrency` calls of `request` in flight for `seconds`. */
  run(request: GrpcPrintRequest, concurrency: number, seconds: number): Promise<LoadResult>;
  close(): void;
}

/** Connects a grpc-js client to the bench gRPC server on `port`. */
export async function connectGrpcLoader(port: number): Promise<GrpcLoader> {
  const { Client } = loadAppendService();
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as PrintClient;
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())),
  );
  return {
    async run(request, concurrency, seconds) {
      const samples = new Samples();
      let ok = 0;
      let failed = 0;
      const started = performance.now();
      const until = started + seconds * 1000;
      const worker = async () => {
        while (performance.now() < until) {
          const t0 = performance.now();
          const success = await new Promise<boolean>((resolve) =>
            client.RemotePrint(request, (error) => resolve(error === null || error === undefined)),
          );
          if (success) {
            ok++;
            samples.add(performance.now() - t0);
          } else failed++;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      const { p50, p99 } = samples.summary();
      return { ok, failed, seconds: (performance.now() - started) / 1000, p50Ms: p50, p99Ms: p99 };
    },
    close: () => client.close(),
  };
}

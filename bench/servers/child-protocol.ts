/**
 * How a benchmark server child talks to the suite: its configuration comes as
 * one JSON argument, it announces its port over IPC (or on stdout when run by
 * hand), and it shuts down cleanly on SIGTERM, SIGINT or a `stop` message, so
 * that `node --cpu-prof` gets to write its profile.
 */

/** Messages a server child sends to the suite. */
export type ChildMessage = { type: 'ready'; port: number; handle: string };

/** Messages the suite sends to a server child. */
export type SuiteMessage = { type: 'stop' };

/** Reads the child's configuration (the JSON first argument; `{}` when absent). */
export function readConfig<T extends object>(): Partial<T> {
  const raw = process.argv[2];
  return raw ? (JSON.parse(raw) as Partial<T>) : {};
}

/** Tells the suite the server listens on `port` and serves `handle` (empty when the suite opens its own). */
export function announce(port: number, handle: string): void {
  const message: ChildMessage = { type: 'ready', port, handle };
  if (process.send) process.send(message);
  else console.log(`listening on http://127.0.0.1:${port} (handle ${handle || 'none'}); Ctrl-C to stop`);
}

/** Runs `close` once on SIGTERM, SIGINT or a `stop` message, then exits 0. */
export function closeOnStop(close: () => Promise<void>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('message', (message: SuiteMessage) => {
    if (message.type === 'stop') stop();
  });
  process.on('disconnect', stop);
}

/**
 * `Symbol.asyncDispose` for runtimes that lack it (Node 20 before 20.4 had
 * none; Node itself used `Symbol.for('nodejs.asyncDispose')`), so that
 * `await using` works with every client object. Imported for its effect.
 */
const symbols = Symbol as unknown as { asyncDispose?: symbol };
symbols.asyncDispose ??= Symbol.for('nodejs.asyncDispose');

export {};

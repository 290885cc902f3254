export { RpcError } from '../common/rpc-error.js';
export { type BuildOptions, buildServer, builtinDefinitions, type ExtraServices } from './app.js';
export { type Clock, ManualClock, systemClock } from './clock/clock.js';
export { defaultServerOptions, optionDefinitions, type ServerOptions } from './options.js';
export type { CallContext } from './rpc/context.js';

import type { Ajv, ValidateFunction } from 'ajv';
import fastJson from 'fast-json-stringify';
import { RpcError } from '../../common/rpc-error.js';
import type { MethodDescriptor, ServiceDefinitions, ServiceDescriptor } from '../../common/service-table.js';
import type { CallContext } from './context.js';
import { compileMessage } from './validation.js';

/** A service implementation object as the server walks it: methods by camelCase name. */
export type AnyImplementation = Record<string, (request: never, context: CallContext) => unknown>;

/** A method ready to serve: its descriptor, schemas and implementation. */
export interface RegisteredMethod {
  readonly service: ServiceDescriptor;
  readonly method: MethodDescriptor;
  /** `Service.Method`, the JSON-RPC name and the metrics label. */
  readonly fullName: string;
  /** `/v1/Service/Method`. */
  readonly path: string;
  readonly requestRef: string;
  readonly responseRef: string;
  /** Validates (and fills defaults of) a request: both transports' (Fastify's routes take it as their validator). */
  readonly validate: ValidateFunction;
  /**
   * Shapes a result by the response schema, as Fastify's serialiser does on the
   * per-method transport (undeclared fields dropped), for the JSON-RPC transport.
   */
  readonly project: (result: unknown) => unknown;
  readonly call: (request: unknown, context: CallContext) => unknown;
}

/** A response serialiser compiled on first use (fast-json-stringify, Fastify's own). */
function projector(definitions: ServiceDefinitions, responseRef: string): (result: unknown) => unknown {
  let serialize: ((value: unknown) => string) | undefined;
  return (result) => {
    serialize ??= fastJson(
      { $ref: responseRef },
      { schema: { [definitions.schemas.$id]: definitions.schemas as never } },
    );
    return JSON.parse(serialize(result));
  };
}

/** Every method the server serves, by `Service.Method`. */
export class MethodRegistry {
  readonly byName = new Map<string, RegisteredMethod>();

  constructor(private readonly ajv: Ajv) {}

  /** Adds one generator run's services with their implementations (keyed by wire service name). */
  add(definitions: ServiceDefinitions, implementations: Record<string, object>): void {
    for (const service of Object.values(definitions.services)) {
      const impl = implementations[service.name] as AnyImplementation | undefined;
      if (impl === undefined) throw new Error(`no implementation given for service ${service.name}`);
      for (const method of Object.values(service.methods)) {
        const fn = impl[method.localName];
        if (typeof fn !== 'function')
          throw new Error(`${service.name} implementation lacks ${method.localName}()`);
        const fullName = `${service.name}.${method.name}`;
        if (this.byName.has(fullName)) throw new Error(`method ${fullName} is defined twice`);
        const responseRef = `${definitions.schemas.$id}#/definitions/${method.response}`;
        this.byName.set(fullName, {
          service,
          method,
          fullName,
          path: `/v1/${service.name}/${method.name}`,
          requestRef: `${definitions.schemas.$id}#/definitions/${method.request}`,
          responseRef,
          validate: compileMessage(this.ajv, definitions.schemas, method.request),
          project: projector(definitions, responseRef),
          call: fn.bind(impl) as RegisteredMethod['call'],
        });
      }
    }
  }
}

/**
 * Runs one call: work whose deadline has passed is never started. Returns what
 * the implementation returns (a value, or a promise for async methods); the
 * transports race promises against the deadline with settleBy (deadlines.ts),
 * unless the method settles within the turn (CallContext.settlesThisTurn).
 */
export function invoke(method: RegisteredMethod, request: unknown, ctx: CallContext): unknown {
  if (ctx.deadline <= Date.now()) throw deadlineBeforeStartError();
  return method.call(request, ctx);
}

/** The answer of a call whose deadline passed before it started (it never runs). */
export function deadlineBeforeStartError(): RpcError {
  return new RpcError({
    code: 'deadline_exceeded',
    message: 'the deadline passed before the call started',
    details: { reason: 'deadline_passed_before_start' },
  });
}

/** The answer of a call still running when its deadline passes. */
export function deadlinePassedError(): RpcError {
  return new RpcError({
    code: 'deadline_exceeded',
    message: 'the deadline passed while the call was running (it may still complete)',
    details: { reason: 'deadline_passed_while_running' },
  });
}

/** A `late` for settleBy (deadlines.ts) that answers deadline_exceeded. */
export function failLate(): never {
  throw deadlinePassedError();
}

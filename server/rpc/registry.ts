import type { Ajv, ValidateFunction } from 'ajv';
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
  /** Validates (and fills defaults of) a request for transports Fastify does not validate. */
  readonly validate: ValidateFunction;
  readonly call: (request: unknown, context: CallContext) => unknown;
}

/** Every method the server serves, by `Service.Method`. */
export class MethodRegistry {
  readonly byName = new Map<string, RegisteredMethod>();
  readonly definitions: ServiceDefinitions[] = [];

  constructor(private readonly ajv: Ajv) {}

  /** Adds one generator run's services with their implementations (keyed by wire service name). */
  add(definitions: ServiceDefinitions, implementations: Record<string, object>): void {
    this.definitions.push(definitions);
    for (const service of Object.values(definitions.services)) {
      const impl = implementations[service.name] as AnyImplementation | undefined;
      if (impl === undefined) throw new Error(`no implementation given for service ${service.name}`);
      for (const method of Object.values(service.methods)) {
        const fn = impl[method.localName];
        if (typeof fn !== 'function') throw new Error(`${service.name} implementation lacks ${method.localName}()`);
        const fullName = `${service.name}.${method.name}`;
        if (this.byName.has(fullName)) throw new Error(`method ${fullName} is defined twice`);
        this.byName.set(fullName, {
          service,
          method,
          fullName,
          path: `/v1/${service.name}/${method.name}`,
          requestRef: `${definitions.schemas.$id}#/definitions/${method.request}`,
          responseRef: `${definitions.schemas.$id}#/definitions/${method.response}`,
          validate: compileMessage(this.ajv, definitions.schemas, method.request),
          call: fn.bind(impl) as RegisteredMethod['call'],
        });
      }
    }
  }
}

/** Runs one call: work whose deadline has passed is never started. */
export function invoke(method: RegisteredMethod, request: unknown, ctx: CallContext): unknown {
  if (ctx.deadline <= Date.now()) {
    throw new RpcError({
      code: 'deadline_exceeded',
      message: 'the deadline passed before the call started',
      details: { reason: 'deadline_passed_before_start' },
    });
  }
  return method.call(request, ctx);
}

/**
 * Start-up time: etcd3 builds its gRPC client at import time with @grpc/proto-loader's
 * `loadSync(rpc.proto)`, which also encodes a descriptor proto of every message for gRPC
 * reflection. No client here uses reflection, and those descriptors were most of an agent's
 * time from exec to its first etcd request. Importing this module before etcd3 puts a loader in
 * Node's require cache, at the path etcd3 resolves, that builds the same package definition from
 * protobufjs alone: each service method with its path and (de)serializers exactly as
 * proto-loader makes them, and message/enum descriptors computed only if something reads them.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as Protobuf from 'protobufjs';

type Options = Protobuf.IConversionOptions & { keepCase?: boolean };

const etcd3Require = createRequire(createRequire(import.meta.url).resolve('etcd3'));
const loaderPath = etcd3Require.resolve('@grpc/proto-loader');
const loaderRequire = createRequire(loaderPath);

function camelCase(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/** A message or enum entry: `format` is read at once by grpc-js, the descriptor only on demand. */
function lazyTypeDefinition(obj: Protobuf.Type | Protobuf.Enum, root: Protobuf.Root) {
  const isEnum = 'valuesById' in obj;
  let cached: { type: unknown; files: Buffer[] } | undefined;
  const build = () => {
    if (cached) return cached;
    // Loading the descriptor extension adds toDescriptor() to the reflection classes.
    const descriptor = loaderRequire('protobufjs/ext/descriptor') as {
      FileDescriptorProto: { encode(v: unknown): { finish(): Uint8Array } };
    };
    type WithDescriptor = { toDescriptor(s: string): { $type: Protobuf.Type } & object };
    const d = (obj as unknown as WithDescriptor).toDescriptor('proto3');
    const files = (
      (root as unknown as WithDescriptor).toDescriptor('proto3') as unknown as { file: unknown[] }
    ).file.map((f) => Buffer.from(descriptor.FileDescriptorProto.encode(f).finish()));
    const descriptorOptions = {
      longs: String,
      enums: String,
      bytes: String,
      defaults: true,
      oneofs: true,
      json: true,
    };
    cached = { type: d.$type.toObject(d as Protobuf.Message, descriptorOptions), files };
    return cached;
  };
  return {
    format: isEnum ? 'Protocol Buffer 3 EnumDescriptorProto' : 'Protocol Buffer 3 DescriptorProto',
    get type() {
      return build().type;
    },
    get fileDescriptorProtos() {
      return build().files;
    },
  };
}

function methodDefinition(
  m: Protobuf.Method,
  service: string,
  options: Options,
  root: Protobuf.Root,
) {
  const req = m.resolvedRequestType!;
  const res = m.resolvedResponseType!;
  const serializer = (cls: Protobuf.Type) => (arg: object) => {
    if (Array.isArray(arg))
      throw new Error(
        `Failed to serialize message: expected object with ${cls.name} structure, got array instead`,
      );
    return cls.encode(cls.fromObject(arg)).finish();
  };
  const deserializer = (cls: Protobuf.Type) => (buf: Buffer) =>
    cls.toObject(cls.decode(buf), options);
  return {
    path: `/${service}/${m.name}`,
    requestStream: !!m.requestStream,
    responseStream: !!m.responseStream,
    requestSerialize: serializer(req),
    requestDeserialize: deserializer(req),
    responseSerialize: serializer(res),
    responseDeserialize: deserializer(res),
    originalName: camelCase(m.name),
    requestType: lazyTypeDefinition(req, root),
    responseType: lazyTypeDefinition(res, root),
    options: {
      deprecated: false,
      idempotency_level: 'IDEMPOTENCY_UNKNOWN',
      uninterpreted_option: [],
    },
  };
}

/**
 * The parsed .proto files as protobufjs JSON, cached in the compile cache's directory (else the
 * temp dir) under a hash of the files' text: parsing rpc.proto is the next-largest start-up
 * cost after the descriptors. Any problem with the cache falls back to parsing.
 */
function loadRoot(pb: typeof Protobuf, filename: string, keepCase: boolean): Protobuf.Root {
  const dir = dirname(filename);
  let file: string | undefined;
  try {
    const hash = createHash('sha256').update(String(keepCase));
    for (const f of readdirSync(dir)
      .filter((n) => n.endsWith('.proto'))
      .sort())
      hash.update(f).update(readFileSync(join(dir, f)));
    const cacheDir = process.env['NODE_COMPILE_CACHE'] || tmpdir();
    file = join(cacheDir, `flotilla-proto-${hash.digest('hex').slice(0, 16)}.json`);
    return pb.Root.fromJSON(JSON.parse(readFileSync(file, 'utf8')) as Protobuf.INamespace);
  } catch {
    const root = new pb.Root();
    root.loadSync(filename, { keepCase });
    if (file)
      try {
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, JSON.stringify(root.toJSON()));
        renameSync(tmp, file);
      } catch {
        // No cache this time; the next start parses again.
      }
    return root;
  }
}

/** proto-loader's loadSync, without eagerly built descriptors. */
export function loadSync(filename: string, options: Options = {}): Record<string, unknown> {
  const pb = loaderRequire('protobufjs') as typeof Protobuf;
  const root = loadRoot(pb, filename, options.keepCase ?? false);
  root.resolveAll();
  const def: Record<string, unknown> = {};
  const walk = (ns: Protobuf.NamespaceBase, prefix: string) => {
    for (const obj of ns.nestedArray) {
      const name = prefix ? `${prefix}.${obj.name}` : obj.name;
      if (obj instanceof pb.Service) {
        const svc: Record<string, unknown> = {};
        for (const m of obj.methodsArray) svc[m.name] = methodDefinition(m, name, options, root);
        def[name] = svc;
      } else if (obj instanceof pb.Type || obj instanceof pb.Enum)
        def[name] = lazyTypeDefinition(obj, root);
      else if (obj instanceof pb.Namespace) walk(obj, name);
    }
  };
  walk(root, '');
  return def;
}

const cache = (createRequire(import.meta.url) as NodeJS.Require).cache;
if (!cache[loaderPath]) {
  const m = new Module(loaderPath);
  m.filename = loaderPath;
  m.loaded = true;
  m.exports = { loadSync };
  cache[loaderPath] = m;
}

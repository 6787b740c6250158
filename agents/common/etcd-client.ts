/**
 * A small etcd v3 client: gRPC over node:http2, with the codecs of etcd-wire.ts, for the calls
 * an agent needs (KV range/put/delete/txn, lease grant/revoke/time-to-live/keep-alive, watch).
 * It exists for start-up weight: etcd3 + @grpc/grpc-js + protobufjs cost an agent ~25 MiB of
 * RSS and most of its CPU before the first etcd request (docs/overlay.md, "Figures").
 *
 * What it keeps from the etcd3 set-up in etcd.ts:
 * - several endpoints with failover: a member that refuses a connection, drops it, misses
 *   keep-alive pings (10 s, 5 s to answer) or answers "etcdserver: no leader" is set aside
 *   for 5 s and the next one is used;
 * - every call carries `hasleader: true` (clientv3's WithRequireLeader), so a member cut off
 *   from its peers refuses calls and cancels streams instead of serving stale data;
 * - every unary call has a deadline (5 s), also sent to etcd as `grpc-timeout`;
 * - TLS with a CA and a client certificate (whose CN is the etcd user);
 * - a watch survives reconnects: it resumes on another member from the revision after the
 *   last event it delivered; only a cancel by etcd (compaction, permission) is an `error`.
 *
 * Usage:
 *   const etcd = createEtcdClient({ etcdEndpoints: ['http://127.0.0.1:2379'] });
 *   const { kvs, header } = await etcd.range({ key: '/a/', rangeEnd: prefixEnd('/a/') });
 *   const w = etcd.watch({ key: '/a/', rangeEnd: prefixEnd('/a/'), startRevision: next });
 *   w.on('events', (evs) => ...); w.on('error', (err) => relist());
 */
import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import { errorMessage } from './errors.js';
import {
  REQUIRE_LEADER,
  UNARY_DEADLINE_MS,
  validateEtcdSettings,
  type EtcdConnectSettings,
  type EtcdSettings,
} from './etcd-settings.js';
import {
  EtcdError,
  GrpcCode,
  GrpcFrameDecoder,
  ProtoDecodeError,
  decodeDeleteRangeResponse,
  decodeHeaderOnly,
  decodeLeaseGrantResponse,
  decodeLeaseTtlResponse,
  decodePutResponse,
  decodeRangeResponse,
  decodeStatusResponse,
  decodeTxnResponse,
  decodeWatchResponse,
  encodeDeleteRangeRequest,
  encodeLeaseGrantRequest,
  encodeLeaseIdRequest,
  encodeLeaseTimeToLiveRequest,
  encodePutRequest,
  encodeRangeRequest,
  encodeTxnRequest,
  encodeWatchRequest,
  grpcFrame,
  grpcTimeout,
  isNoLeader,
  statusError,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type LeaseGrantResponse,
  type LeaseTtlResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
  type WatchCreate,
  type WatchEvent,
  type WatchResponse,
} from './etcd-wire.js';

/**
 * The connection to a member failed or was lost. `maybeApplied` is false when the request
 * certainly never reached etcd (no connection, stream refused), so even a write may be retried.
 */
export class EtcdTransportError extends EtcdError {
  constructor(
    message: string,
    readonly maybeApplied: boolean,
    endpoint?: string,
  ) {
    super(GrpcCode.UNAVAILABLE, message, endpoint);
  }
}

/** A watch was cancelled by etcd because its start revision is compacted away. */
export class EtcdCompactedError extends EtcdError {
  override name = 'EtcdCompactedError';
  constructor(
    readonly compactRevision: string,
    endpoint?: string,
  ) {
    super(
      GrpcCode.OUT_OF_RANGE,
      `etcdserver: mvcc: required revision has been compacted (oldest left: ${compactRevision})`,
      endpoint,
    );
  }
}

export interface EtcdClientOptions extends EtcdConnectSettings {
  /** Per unary call, all attempts included (default 5 s). */
  deadlineMs?: number;
  /** Connection set-up (TCP, TLS, HTTP/2 preface), per attempt (default 3 s). */
  dialTimeoutMs?: number;
  /** HTTP/2 ping interval, and how long an answer may take (default 10 s and 5 s). */
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** How long a failed member is passed over (default 5 s). */
  failCooldownMs?: number;
}

/** The calls the overlay's lease store makes; EtcdClient implements it. */
export interface EtcdKv {
  range(q: RangeRequest): Promise<RangeResponse>;
  txn(q: TxnRequest): Promise<TxnResponse>;
  leaseGrant(ttlSeconds: number): Promise<LeaseGrantResponse>;
  leaseRevoke(id: string): Promise<void>;
  leaseTimeToLive(id: string): Promise<LeaseTtlResponse>;
  keepAliveOnce(id: string, opts?: { attempts?: number; timeoutMs?: number }): Promise<number>;
  watch(q: WatchCreate): EtcdWatch;
}

interface WatchEvents {
  /** Events of one response, in revision order. */
  events: [events: WatchEvent[], res: WatchResponse];
  /** The watch is (again) registered with a member. */
  connected: [endpoint: string];
  /** etcd cancelled the watch (compaction: EtcdCompactedError; permission; other reason). Final. */
  error: [err: Error];
}

class Endpoint {
  session: http2.ClientHttp2Session | undefined;
  connecting: Promise<http2.ClientHttp2Session> | undefined;
  failedUntil = 0;
  constructor(readonly url: URL) {}
  get name(): string {
    return this.url.origin;
  }
}

/** One gRPC call on an HTTP/2 stream; `onEnd` runs once, with the call's error if it failed. */
class GrpcCall {
  private readonly decoder = new GrpcFrameDecoder();
  private status: string | undefined;
  private statusMessage: string | undefined;
  private failure: Error | undefined;
  private cancelled = false;

  constructor(
    private readonly req: http2.ClientHttp2Stream,
    readonly endpoint: string,
    onMessage: (m: Buffer) => void,
    onEnd: (err: Error | undefined) => void,
  ) {
    const takeStatus = (h: http2.IncomingHttpHeaders) => {
      const s = h['grpc-status'];
      if (s === undefined) return;
      this.status = String(s);
      const m = h['grpc-message'];
      this.statusMessage = m === undefined ? undefined : String(m);
    };
    req.on('response', (h) => {
      const code = h[':status'];
      if (code !== 200)
        this.failure = new EtcdTransportError(
          `HTTP status ${code} from ${endpoint} (is it etcd's client URL?)`,
          true,
          endpoint,
        );
      takeStatus(h); // a trailers-only response (an error before any message)
    });
    req.on('trailers', takeStatus);
    req.on('data', (chunk: Buffer) => {
      if (this.cancelled || this.failure) return;
      try {
        for (const m of this.decoder.push(chunk)) onMessage(m);
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        req.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
    req.on('error', (err) => {
      this.failure ??= err;
    });
    req.on('close', () => onEnd(this.result()));
  }

  private result(): Error | undefined {
    if (this.cancelled) return new EtcdError(GrpcCode.CANCELLED, 'cancelled', this.endpoint);
    if (this.failure instanceof ProtoDecodeError || this.failure instanceof EtcdError)
      return this.failure instanceof ProtoDecodeError
        ? new EtcdError(
            GrpcCode.UNKNOWN,
            `bad message from ${this.endpoint}: ${this.failure.message}`,
            this.endpoint,
          )
        : this.failure;
    if (this.status !== undefined) {
      const err = statusError(this.status, this.statusMessage, this.endpoint);
      if (err || this.decoder.buffered === 0) return err;
      return new EtcdError(GrpcCode.UNKNOWN, `truncated message from ${this.endpoint}`);
    }
    const rst = this.req.rstCode;
    return new EtcdTransportError(
      this.failure
        ? errorMessage(this.failure)
        : `stream closed by ${this.endpoint} (HTTP/2 code ${rst ?? 'none'})`,
      rst !== http2.constants.NGHTTP2_REFUSED_STREAM,
      this.endpoint,
    );
  }

  write(message: Uint8Array): void {
    if (!this.req.closed && !this.req.destroyed) this.req.write(grpcFrame(message));
  }

  /** Half-closes: no more requests on this stream. */
  end(message?: Uint8Array): void {
    if (this.req.closed || this.req.destroyed) return;
    if (message) this.req.end(grpcFrame(message));
    else this.req.end();
  }

  cancel(): void {
    if (this.req.closed || this.req.destroyed) return;
    this.cancelled = true;
    this.req.close(http2.constants.NGHTTP2_CANCEL);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class EtcdClient implements EtcdKv {
  private readonly endpoints: Endpoint[];
  private current = 0;
  private closed = false;
  private readonly watches = new Set<EtcdWatch>();
  /** Streams open per session: a session keeps the process alive only while it has some. */
  private readonly openStreams = new WeakMap<http2.ClientHttp2Session, number>();
  readonly deadlineMs: number;
  private readonly dialTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly pingTimeoutMs: number;
  private readonly failCooldownMs: number;

  constructor(private readonly o: EtcdClientOptions) {
    this.endpoints = o.endpoints.map((u) => new Endpoint(u));
    this.deadlineMs = o.deadlineMs ?? UNARY_DEADLINE_MS;
    this.dialTimeoutMs = o.dialTimeoutMs ?? 3000;
    this.pingIntervalMs = o.pingIntervalMs ?? 10_000;
    this.pingTimeoutMs = o.pingTimeoutMs ?? 5000;
    this.failCooldownMs = o.failCooldownMs ?? 5000;
  }

  /** The endpoints as given, for messages. */
  get endpointNames(): string[] {
    return this.endpoints.map((e) => e.name);
  }

  // ---- endpoints and sessions ----------------------------------------------------------------

  /** The member to use: the current one unless it failed lately, else the next healthy one. */
  private pick(): Endpoint {
    const now = Date.now();
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const idx = (this.current + i) % n;
      if (this.endpoints[idx]!.failedUntil <= now) {
        this.current = idx;
        return this.endpoints[idx]!;
      }
    }
    // All failed lately: the one that failed longest ago.
    return this.endpoints.reduce((a, b) => (b.failedUntil < a.failedUntil ? b : a));
  }

  /** Sets a member aside and drops its connection (its streams move on to another member). */
  private markFailed(ep: Endpoint): void {
    ep.failedUntil = Date.now() + this.failCooldownMs;
    const s = ep.session;
    ep.session = undefined;
    s?.destroy();
    if (this.endpoints[this.current] === ep)
      this.current = (this.current + 1) % this.endpoints.length;
  }

  private connect(ep: Endpoint, timeoutMs: number): Promise<http2.ClientHttp2Session> {
    if (this.closed)
      return Promise.reject(new EtcdTransportError('etcd client closed', false, ep.name));
    const live = ep.session;
    if (live && !live.closed && !live.destroyed) return Promise.resolve(live);
    ep.connecting ??= new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const session = http2.connect(ep.url.origin, {
        ...(this.o.ca ? { ca: this.o.ca } : {}),
        ...(this.o.cert ? { cert: this.o.cert, key: this.o.key } : {}),
        settings: { enablePush: false, initialWindowSize: 1 << 20 },
      });
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.destroy();
        reject(new EtcdTransportError(errorMessage(err), false, ep.name));
      };
      const timer = setTimeout(
        () => fail(new Error(`no connection to ${ep.name} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      session.once('error', fail);
      session.once('close', () => fail(new Error(`${ep.name} closed the connection`)));
      // Connected once etcd's SETTINGS arrive: over plain TCP 'connect' fires without a word
      // from the server, so a port that accepts and stays mute would pass as a member.
      session.once('remoteSettings', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.off('error', fail);
        this.adopt(ep, session);
        resolve(session);
      });
    }).finally(() => {
      ep.connecting = undefined;
    });
    return ep.connecting;
  }

  /** A connected session becomes the member's: keep-alive pings, and cleanup when it ends. */
  private adopt(ep: Endpoint, session: http2.ClientHttp2Session): void {
    if (this.closed) {
      session.destroy();
      return;
    }
    ep.session = session;
    this.openStreams.set(session, 0);
    session.unref();
    session.setLocalWindowSize(8 << 20);
    // Errors end the session; its streams report them and the next call reconnects.
    session.on('error', () => undefined);
    const drop = () => {
      clearInterval(ping);
      if (ep.session === session) ep.session = undefined;
    };
    session.on('close', drop);
    session.on('goaway', () => {
      if (ep.session === session) ep.session = undefined;
    });
    const ping = setInterval(() => {
      if (session.destroyed) return;
      const timer = setTimeout(() => {
        if (ep.session === session) this.markFailed(ep);
        else session.destroy();
      }, this.pingTimeoutMs);
      timer.unref();
      try {
        session.ping(() => clearTimeout(timer));
      } catch {
        clearTimeout(timer);
      }
    }, this.pingIntervalMs);
    ping.unref();
  }

  /** Starts a gRPC call on `session`; throws EtcdTransportError if the session cannot take it. */
  private start(
    ep: Endpoint,
    session: http2.ClientHttp2Session,
    path: string,
    timeoutMs: number | undefined,
    onMessage: (m: Buffer) => void,
    onEnd: (err: Error | undefined) => void,
  ): GrpcCall {
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        ...REQUIRE_LEADER,
        ...(timeoutMs !== undefined ? { 'grpc-timeout': grpcTimeout(timeoutMs) } : {}),
      });
    } catch (err) {
      // The session is closing (GOAWAY) or gone: nothing was sent.
      if (ep.session === session) ep.session = undefined;
      throw new EtcdTransportError(errorMessage(err), false, ep.name);
    }
    const open = this.openStreams.get(session) ?? 0;
    this.openStreams.set(session, open + 1);
    if (open === 0) session.ref();
    return new GrpcCall(req, ep.name, onMessage, (err) => {
      const left = (this.openStreams.get(session) ?? 1) - 1;
      this.openStreams.set(session, left);
      if (left === 0 && !session.destroyed) session.unref();
      onEnd(err);
    });
  }

  /** One attempt of a unary call on one member. */
  private once(
    ep: Endpoint,
    session: http2.ClientHttp2Session,
    path: string,
    body: Uint8Array,
    timeoutMs: number,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let reply: Buffer | undefined;
      let timedOut = false;
      const call = this.start(
        ep,
        session,
        path,
        timeoutMs,
        (m) => {
          reply = m;
        },
        (err) => {
          clearTimeout(timer);
          if (timedOut)
            reject(
              new EtcdError(
                GrpcCode.DEADLINE_EXCEEDED,
                `no answer from ${ep.name} within ${timeoutMs} ms`,
                ep.name,
              ),
            );
          else if (err) reject(err);
          else if (!reply)
            reject(new EtcdError(GrpcCode.UNKNOWN, `no message from ${ep.name}`, ep.name));
          else resolve(reply);
        },
      );
      const timer = setTimeout(() => {
        timedOut = true;
        call.cancel();
      }, timeoutMs);
      call.end(body);
    });
  }

  /**
   * A unary call with failover: tried on each member in turn while the deadline lasts, when the
   * member refused it without applying it (no connection, "no leader"); an `idempotent` call is
   * also retried after a connection lost mid-call.
   */
  private async unary<T>(
    path: string,
    body: Uint8Array,
    decodeReply: (b: Uint8Array) => T,
    idempotent: boolean,
  ): Promise<T> {
    const deadline = Date.now() + this.deadlineMs;
    let last: unknown;
    for (let attempt = 0; attempt <= this.endpoints.length; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const ep = this.pick();
      let session: http2.ClientHttp2Session;
      try {
        session = await this.connect(ep, Math.min(left, this.dialTimeoutMs));
      } catch (err) {
        this.markFailed(ep);
        last = err;
        continue;
      }
      try {
        return decodeReply(await this.once(ep, session, path, body, deadline - Date.now()));
      } catch (err) {
        last = err;
        const transport = err instanceof EtcdTransportError;
        const refused = isNoLeader(err) || (transport && !err.maybeApplied);
        const deadlineHit = err instanceof EtcdError && err.code === GrpcCode.DEADLINE_EXCEEDED;
        if (refused || transport || deadlineHit) this.markFailed(ep);
        if (refused || (idempotent && transport)) continue;
        throw err;
      }
    }
    if (last instanceof Error) throw last;
    throw new EtcdError(GrpcCode.DEADLINE_EXCEEDED, `no answer within ${this.deadlineMs} ms`);
  }

  // ---- the etcd API ---------------------------------------------------------------------------

  range(q: RangeRequest): Promise<RangeResponse> {
    return this.unary('/etcdserverpb.KV/Range', encodeRangeRequest(q), decodeRangeResponse, true);
  }

  /** The value of one key, or null. */
  async getString(key: string): Promise<string | null> {
    return (await this.range({ key })).kvs[0]?.value ?? null;
  }

  put(q: PutRequest): Promise<PutResponse> {
    return this.unary('/etcdserverpb.KV/Put', encodePutRequest(q), decodePutResponse, false);
  }

  deleteRange(q: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.unary(
      '/etcdserverpb.KV/DeleteRange',
      encodeDeleteRangeRequest(q),
      decodeDeleteRangeResponse,
      false,
    );
  }

  txn(q: TxnRequest): Promise<TxnResponse> {
    return this.unary('/etcdserverpb.KV/Txn', encodeTxnRequest(q), decodeTxnResponse, false);
  }

  leaseGrant(ttlSeconds: number, id = '0'): Promise<LeaseGrantResponse> {
    return this.unary(
      '/etcdserverpb.Lease/LeaseGrant',
      encodeLeaseGrantRequest({ ttl: ttlSeconds, id }),
      decodeLeaseGrantResponse,
      false,
    );
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.unary(
      '/etcdserverpb.Lease/LeaseRevoke',
      encodeLeaseIdRequest(id),
      decodeHeaderOnly,
      true,
    );
  }

  /** The lease's remaining TTL (-1: no such lease). */
  leaseTimeToLive(id: string, keys = false): Promise<LeaseTtlResponse> {
    return this.unary(
      '/etcdserverpb.Lease/LeaseTimeToLive',
      encodeLeaseTimeToLiveRequest({ id, keys }),
      decodeLeaseTtlResponse,
      true,
    );
  }

  status(): Promise<StatusResponse> {
    return this.unary(
      '/etcdserverpb.Maintenance/Status',
      new Uint8Array(0),
      decodeStatusResponse,
      true,
    );
  }

  /**
   * One lease keep-alive round trip: resolves the lease's remaining TTL in seconds (0 = the
   * lease is gone). Each attempt opens a fresh LeaseKeepAlive stream on the current member and
   * gives up after `timeoutMs`; a failed member is set aside, so the next attempt goes
   * elsewhere. Rejects with the last error after `attempts` tries.
   */
  async keepAliveOnce(id: string, { attempts = 3, timeoutMs = 3000 } = {}): Promise<number> {
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      const ep = this.pick();
      try {
        const session = await this.connect(ep, Math.min(timeoutMs, this.dialTimeoutMs));
        return await new Promise<number>((resolve, reject) => {
          let done = false;
          const call = this.start(
            ep,
            session,
            '/etcdserverpb.Lease/LeaseKeepAlive',
            undefined,
            (m) => {
              if (done) return;
              done = true;
              clearTimeout(timer);
              try {
                resolve(Number(decodeLeaseTtlResponse(m).ttl));
              } catch (err) {
                reject(err instanceof Error ? err : new Error(String(err)));
              }
              call.cancel();
            },
            (err) => {
              if (done) return;
              done = true;
              clearTimeout(timer);
              reject(
                err ?? new EtcdError(GrpcCode.UNKNOWN, `no keep-alive answer from ${ep.name}`),
              );
            },
          );
          const timer = setTimeout(() => {
            if (done) return;
            done = true;
            call.cancel();
            reject(
              new EtcdError(
                GrpcCode.DEADLINE_EXCEEDED,
                `no keep-alive answer from ${ep.name} within ${timeoutMs} ms`,
                ep.name,
              ),
            );
          }, timeoutMs);
          call.write(encodeLeaseIdRequest(id));
        });
      } catch (err) {
        last = err;
        if (err instanceof EtcdError && err.code !== GrpcCode.PERMISSION_DENIED)
          this.markFailed(ep);
        else throw err;
      }
    }
    throw last instanceof Error ? last : new Error(errorMessage(last));
  }

  /** Watches a key or range; see EtcdWatch. */
  watch(q: WatchCreate): EtcdWatch {
    const w = new EtcdWatch(q, {
      open: (onMessage, onEnd) => this.openWatchStream(onMessage, onEnd),
      forget: () => this.watches.delete(w),
    });
    this.watches.add(w);
    return w;
  }

  private async openWatchStream(
    onMessage: (m: Buffer) => void,
    onEnd: (err: Error | undefined, ep: string) => void,
  ): Promise<GrpcCall> {
    const ep = this.pick();
    let session: http2.ClientHttp2Session;
    try {
      session = await this.connect(ep, this.dialTimeoutMs);
    } catch (err) {
      this.markFailed(ep);
      throw err;
    }
    return this.start(ep, session, '/etcdserverpb.Watch/Watch', undefined, onMessage, (err) => {
      if (err instanceof EtcdTransportError || isNoLeader(err)) this.markFailed(ep);
      onEnd(err, ep.name);
    });
  }

  /** Cancels every watch and closes every connection. */
  close(): void {
    this.closed = true;
    for (const w of this.watches) void w.cancel();
    for (const ep of this.endpoints) {
      ep.session?.destroy();
      ep.session = undefined;
    }
  }
}

interface WatchTransport {
  open(
    onMessage: (m: Buffer) => void,
    onEnd: (err: Error | undefined, endpoint: string) => void,
  ): Promise<GrpcCall>;
  forget(): void;
}

/**
 * One etcd watch. It keeps itself registered across lost connections and members without a
 * leader: it reopens (after 250 ms, doubling to 1 s) from the revision after the last event it
 * delivered, so `events` sees every change once and in order. It ends only by `cancel()` or by
 * etcd cancelling it, reported once as `error`: EtcdCompactedError when the revision it needs
 * is compacted away (list again, then watch from the listed revision), or etcd's reason
 * (e.g. "etcdserver: permission denied").
 */
export class EtcdWatch extends EventEmitter<WatchEvents> {
  private next: bigint | undefined;
  private call: GrpcCall | undefined;
  private done = false;
  private backoffMs = 250;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly q: WatchCreate,
    private readonly transport: WatchTransport,
  ) {
    super();
    this.next = q.startRevision !== undefined ? BigInt(q.startRevision) : undefined;
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.done) return;
    // The stream's callbacks run only after the create request below is written.
    const ref: { call?: GrpcCall } = {};
    let call: GrpcCall;
    try {
      call = await this.transport.open(
        (m) => ref.call && this.onMessage(ref.call, m),
        (err) => ref.call && this.onEnd(ref.call, err),
      );
      ref.call = call;
    } catch {
      this.later();
      return;
    }
    if (this.done) {
      call.cancel();
      return;
    }
    this.call = call;
    call.write(
      encodeWatchRequest({
        create: {
          ...this.q,
          startRevision: this.next !== undefined ? String(this.next) : undefined,
        },
      }),
    );
  }

  private later(): void {
    if (this.done) return;
    this.timer = setTimeout(() => void this.open(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 1000);
  }

  private onMessage(call: GrpcCall, m: Buffer): void {
    if (this.done || call !== this.call) return;
    let res: WatchResponse;
    try {
      res = decodeWatchResponse(m);
    } catch (err) {
      // A message we cannot read: start over on a fresh stream from the same revision.
      this.call = undefined;
      call.cancel();
      this.emitOnce(new EtcdError(GrpcCode.UNKNOWN, `bad watch response: ${errorMessage(err)}`));
      return;
    }
    if (res.created) {
      this.backoffMs = 250;
      if (this.next === undefined) this.next = BigInt(res.header.revision) + 1n;
      this.emit('connected', call.endpoint);
    }
    if (res.events.length > 0) {
      this.next = BigInt(res.events[res.events.length - 1]!.kv.modRevision) + 1n;
      this.emit('events', res.events, res);
    }
    if (res.canceled) {
      this.call = undefined;
      call.cancel();
      const reason = res.cancelReason || 'watch cancelled by etcd';
      this.emitOnce(
        res.compactRevision !== '0'
          ? new EtcdCompactedError(res.compactRevision, call.endpoint)
          : new EtcdError(
              /permission denied/.test(reason) ? GrpcCode.PERMISSION_DENIED : GrpcCode.CANCELLED,
              reason,
              call.endpoint,
            ),
      );
    }
  }

  private onEnd(call: GrpcCall, err: Error | undefined): void {
    if (this.done || call !== this.call) return;
    this.call = undefined;
    if (
      err instanceof EtcdError &&
      (err.code === GrpcCode.PERMISSION_DENIED || err.code === GrpcCode.UNAUTHENTICATED)
    ) {
      this.emitOnce(err);
      return;
    }
    this.later();
  }

  private emitOnce(err: Error): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.transport.forget();
    this.emit('error', err);
  }

  /** Stops the watch; no event or error is emitted after it. */
  async cancel(): Promise<void> {
    this.done = true;
    clearTimeout(this.timer);
    this.transport.forget();
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    await sleep(0);
  }
}

/** Validates the settings (one-line errors naming the flag) and makes a client; no I/O yet. */
export function createEtcdClient(
  s: EtcdSettings,
  opts: Partial<EtcdClientOptions> = {},
): EtcdClient {
  return new EtcdClient({ ...validateEtcdSettings(s), ...opts });
}

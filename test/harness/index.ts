/** The test harness: real etcd, hosts as network namespaces, a dockerd per host. See cluster.ts. */
export {
  startCluster,
  Cluster,
  Host,
  type ClusterOptions,
  type ContainerRunOptions,
  type DockerOptions,
} from './cluster.js';
export { TEST_IMAGE, ensureTestImage, testImageTar } from './image.js';
export {
  run,
  must,
  waitFor,
  withDeadline,
  startProcess,
  stopPid,
  alive,
  type RunResult,
  type StartedProcess,
} from './proc.js';
export { teardown, sweepLeftovers, loadState, listNamespaces, type RunState } from './state.js';
export { freePort, startLocalEtcd, type LocalEtcd } from './local-etcd.js';
export {
  etcdClientFlags,
  etcdClientSettings,
  etcdctlTlsArgs,
  type EtcdClientSettings,
  type EtcdUser,
} from './etcd-auth.js';
export { startTrackedRun, type TrackedRun } from './tracked.js';
export type { EtcdMember, MemberStatus } from './etcd.js';
export { startChromium, Browser, Page, CHROMIUM, type ProcessOwner } from './chromium.js';

/**
 * Prometheus metrics: one registry per agent (prom-client), so tests can run several agents in
 * one process without clashing names. `metricsFor` hands an agent its registry and helpers.
 */
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

// prom-client's index also loads its push gateway, cluster aggregator and default process
// metrics (with OpenTelemetry): ~0.1 s of CPU at every agent start, measured. The four classes
// used here come from their own modules, which load none of that.
const load = createRequire(import.meta.url);
export const Registry = load('prom-client/lib/registry') as typeof Prom.Registry;
export const Counter = load('prom-client/lib/counter') as typeof Prom.Counter;
export const Gauge = load('prom-client/lib/gauge') as typeof Prom.Gauge;
export const Histogram = load('prom-client/lib/histogram') as typeof Prom.Histogram;
export type Registry = Prom.Registry;
export type Counter<T extends string = string> = Prom.Counter<T>;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Histogram<T extends string = string> = Prom.Histogram<T>;

export interface MetricSet {
  registry: Registry;
  counter<L extends string>(name: string, help: string, labels?: L[]): Counter<L>;
  gauge<L extends string>(name: string, help: string, labels?: L[]): Gauge<L>;
  histogram<L extends string>(
    name: string,
    help: string,
    buckets: number[],
    labels?: L[],
  ): Histogram<L>;
}

/** Metrics named `flotilla_<agent>_<name>`. */
export function metricsFor(agent: string): MetricSet {
  const registry = new Registry();
  const full = (n: string) => `flotilla_${agent}_${n}`;
  return {
    registry,
    counter: (name, help, labels = []) =>
      new Counter({ name: full(name), help, labelNames: labels, registers: [registry] }),
    gauge: (name, help, labels = []) =>
      new Gauge({ name: full(name), help, labelNames: labels, registers: [registry] }),
    histogram: (name, help, buckets, labels = []) =>
      new Histogram({ name: full(name), help, buckets, labelNames: labels, registers: [registry] }),
  };
}

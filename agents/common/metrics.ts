/**
 * Prometheus metrics: one registry per agent (prom-client), so tests can run several agents in
 * one process without clashing names. `metricsFor` hands an agent its registry and helpers.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

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

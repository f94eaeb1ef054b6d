import {
  collectDefaultMetrics, Counter, type CounterConfiguration, Gauge, type GaugeConfiguration, Histogram,
  type HistogramConfiguration, register,
} from 'prom-client'

// Every metric lives in prom-client's default registry, so any module (a circuit breaker, a worker)
// can add its own. Each is made on first use and found again after: building the app twice in one
// process (tests) must not register a name twice, which prom-client refuses.

export { register }

export function counter<L extends string> (config: CounterConfiguration<L>): Counter<L> {
  return (register.getSingleMetric(config.name) as Counter<L> | undefined) ?? new Counter(config)
}

export function gauge<L extends string> (config: GaugeConfiguration<L>): Gauge<L> {
  return (register.getSingleMetric(config.name) as Gauge<L> | undefined) ?? new Gauge(config)
}

export function histogram<L extends string> (config: HistogramConfiguration<L>): Histogram<L> {
  return (register.getSingleMetric(config.name) as Histogram<L> | undefined) ?? new Histogram(config)
}

/** Node process metrics (CPU, memory, event loop lag, GC, handles), once per process. */
export function collectProcessMetrics (): void {
  if (register.getSingleMetric('process_cpu_user_seconds_total')) return
  collectDefaultMetrics({ register })
}

import type { CircuitObserver, CircuitStateName } from '../resilience/circuit-breaker.js'
import { counter, gauge } from './registry.js'

const STATE_VALUES: Record<CircuitStateName, number> = { closed: 0, half_open: 1, open: 2 }

const circuitState = gauge({
  name: 'reachroute_circuit_state',
  help: 'Circuit breaker state per outside system: 0 closed, 1 half-open (a probe is out), 2 open',
  labelNames: ['target'] as const,
})
const rejections = counter({
  name: 'reachroute_circuit_rejections_total',
  help: 'Calls turned away by an open circuit breaker, without calling the outside system',
  labelNames: ['target'] as const,
})

/** Puts every breaker's state and rejections into the metrics. */
export const circuitMetrics: CircuitObserver = {
  stateChanged: (target, state) => circuitState.set({ target }, STATE_VALUES[state]),
  rejected: target => rejections.inc({ target }),
}

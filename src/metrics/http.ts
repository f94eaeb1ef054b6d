import { histogram } from './registry.js'

const requestDuration = histogram({
  name: 'reachroute_http_request_duration_seconds',
  help: 'HTTP requests by method, route pattern (not the raw URL; "unmatched" when no route matched) and status code',
  labelNames: ['method', 'route', 'status_code'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
})

export function observeHttpRequest (method: string, route: string | undefined, statusCode: number, seconds: number): void {
  requestDuration.observe({ method, route: route ?? 'unmatched', status_code: String(statusCode) }, seconds)
}

import type { Config } from '../../config.js'
import { SandboxUpstream } from './sandbox.js'
import type { ReachabilityUpstream } from './upstream.js'

export function createUpstream (config: Config): ReachabilityUpstream {
  return new SandboxUpstream({ comebackSeconds: config.reachability.sandboxComebackSeconds })
}

export const SCOPES = [
  'reachability:read',
  'notifications:write',
  'notifications:read',
  'campaigns:write',
  'campaigns:read',
  'reports:read',
  'ops',
] as const
export type Scope = typeof SCOPES[number]

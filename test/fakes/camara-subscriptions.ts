import { randomUUID } from 'node:crypto'
import { type CamaraRequest, camaraError, type FakeCamara } from './camara.js'

// The subscriptions API (v0.7) of the fake operator: checks each creation's body against the spec,
// remembers what lives, and answers DELETE for the ids it gave out.

export const SUBSCRIPTIONS_ROOT = '/device-reachability-status-subscriptions/v0.7'
const TYPE = /^org\.camaraproject\.device-reachability-status-subscriptions\.v0\.(reachability-data|reachability-sms|reachability-disconnected)$/

export interface Subscription {
  id: string
  phoneNumber: string
  type: string
  sink: string
  sinkToken: string
  expireTime: string
  deleted: boolean
}

export interface FakeSubscriptions {
  url: string
  subscriptions: Subscription[]
  live (): Subscription[]
  rejected: string[]
  /** How long the creation of a subscription of a type (short: reachability-sms) takes, in ms. */
  delays: Record<string, number>
  /** Run before a creation is answered, with the subscription made: an operator's initial event may come first. */
  beforeAnswer?: (subscription: Subscription) => Promise<void>
}

export function addSubscriptions (fake: FakeCamara): FakeSubscriptions {
  const subscriptions: Subscription[] = []
  const rejected: string[] = []
  const delays: Record<string, number> = {}
  const api: FakeSubscriptions = { url: fake.url + SUBSCRIPTIONS_ROOT, subscriptions, live: () => subscriptions.filter(s => !s.deleted), rejected, delays }
  fake.route('POST', `${SUBSCRIPTIONS_ROOT}/subscriptions`, async (request: CamaraRequest) => {
    const problem = check(request.body)
    if (problem) {
      rejected.push(problem)
      return camaraError(400, 'INVALID_ARGUMENT', problem)
    }
    const body = request.body as { sink: string, sinkCredential: { accessToken: string }, types: string[], config: { subscriptionDetail: { device: { phoneNumber: string } }, subscriptionExpireTime: string } }
    const sub: Subscription = {
      id: randomUUID(),
      phoneNumber: body.config.subscriptionDetail.device.phoneNumber,
      type: body.types[0]!,
      sink: body.sink,
      sinkToken: body.sinkCredential.accessToken,
      expireTime: body.config.subscriptionExpireTime,
      deleted: false,
    }
    const delay = delays[sub.type.split('.').at(-1)!]
    if (delay) await new Promise(resolve => setTimeout(resolve, delay))
    subscriptions.push(sub)
    fake.route('DELETE', `${SUBSCRIPTIONS_ROOT}/subscriptions/${sub.id}`, () => {
      sub.deleted = true
      return { status: 204 }
    })
    await api.beforeAnswer?.(sub)
    return { status: 201, json: { id: sub.id, protocol: 'HTTP', sink: sub.sink, types: body.types, config: body.config, startsAt: new Date().toISOString() } }
  })
  return api
}

function check (body: unknown): string | undefined {
  // The body is checked field by field here: read it as loosely as a server would.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const b = body as Record<string, any> | undefined
  if (!b || typeof b !== 'object') return 'the body is not an object'
  if (b.protocol !== 'HTTP') return 'protocol must be HTTP'
  if (typeof b.sink !== 'string' || !/^https?:\/\//.test(b.sink)) return 'sink must be a URL'
  const cred = b.sinkCredential
  if (!cred || cred.credentialType !== 'ACCESSTOKEN' || typeof cred.accessToken !== 'string' || cred.accessTokenType !== 'bearer' || !cred.accessTokenExpiresUtc) {
    return 'sinkCredential must be an ACCESSTOKEN credential with accessToken, accessTokenExpiresUtc and accessTokenType bearer'
  }
  if (!Array.isArray(b.types) || b.types.length !== 1 || !TYPE.test(b.types[0])) return 'types must hold exactly one reachability event type'
  const config = b.config
  if (!config?.subscriptionDetail?.device?.phoneNumber || !/^\+[1-9][0-9]{4,14}$/.test(config.subscriptionDetail.device.phoneNumber)) {
    return 'config.subscriptionDetail.device.phoneNumber is missing or malformed'
  }
  if (typeof config.subscriptionExpireTime !== 'string' || Number.isNaN(Date.parse(config.subscriptionExpireTime))) return 'config.subscriptionExpireTime must be a date-time'
  return undefined
}

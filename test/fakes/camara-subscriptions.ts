import { randomUUID } from 'node:crypto'
import { type CamaraRequest, camaraError, type FakeCamara } from './camara.js'
import { type Reply, Script } from './scripted-server.js'

// The subscriptions API (v0.7) of the fake operator: checks each creation's body against the spec,
// remembers what lives, lists it, and answers DELETE for the ids it gave out.

export const SUBSCRIPTIONS_ROOT = '/device-reachability-status-subscriptions/v0.7'
const TYPE = /^org\.camaraproject\.device-reachability-status-subscriptions\.v0\.(reachability-data|reachability-sms|reachability-disconnected)$/

export interface Subscription {
  id: string
  phoneNumber: string
  type: string
  sink: string
  sinkToken: string
  expireTime: string
  startsAt: string
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
  /**
   * Refuses duplicates, as some operators do: a creation while a live subscription has the same sink, type and
   * phone number is answered 409 ALREADY_EXISTS, and makes nothing.
   */
  dedupe: boolean
  /** The next creations are made, but answered 504 (a gateway gave up waiting): the answer with the id is lost. */
  lostAnswers: number
  /** Replies to the next creations (by phone number, or `next`), given once the body passed its check; they make nothing. */
  script: Script
}

export function addSubscriptions (fake: FakeCamara): FakeSubscriptions {
  const subscriptions: Subscription[] = []
  const live = () => subscriptions.filter(s => !s.deleted)
  const api: FakeSubscriptions = {
    url: fake.url + SUBSCRIPTIONS_ROOT, subscriptions, live, rejected: [], delays: {}, dedupe: false, lostAnswers: 0, script: new Script(),
  }
  fake.route('POST', `${SUBSCRIPTIONS_ROOT}/subscriptions`, async (request: CamaraRequest): Promise<Reply> => {
    const problem = check(request.body)
    if (problem) {
      api.rejected.push(problem)
      return camaraError(400, 'INVALID_ARGUMENT', problem)
    }
    const body = request.body as { sink: string, sinkCredential: { accessToken: string }, types: string[], config: { subscriptionDetail: { device: { phoneNumber: string } }, subscriptionExpireTime: string } }
    const phoneNumber = body.config.subscriptionDetail.device.phoneNumber
    const scripted = api.script.take(phoneNumber)
    if (scripted) return scripted
    const sub: Subscription = {
      id: randomUUID(),
      phoneNumber,
      type: body.types[0]!,
      sink: body.sink,
      sinkToken: body.sinkCredential.accessToken,
      expireTime: body.config.subscriptionExpireTime,
      startsAt: new Date().toISOString(),
      deleted: false,
    }
    const delay = api.delays[sub.type.split('.').at(-1)!]
    if (delay) await new Promise(resolve => setTimeout(resolve, delay))
    if (api.dedupe && live().some(s => s.sink === sub.sink && s.type === sub.type && s.phoneNumber === sub.phoneNumber)) {
      return camaraError(409, 'ALREADY_EXISTS', 'Trying to create an existing resource.')
    }
    subscriptions.push(sub)
    fake.route('DELETE', `${SUBSCRIPTIONS_ROOT}/subscriptions/${sub.id}`, () => {
      sub.deleted = true
      return { status: 204 }
    })
    await api.beforeAnswer?.(sub)
    if (api.lostAnswers > 0) {
      api.lostAnswers--
      return camaraError(504, 'TIMEOUT', 'Request timeout exceeded.')
    }
    return { status: 201, json: asSubscription(sub) }
  })
  // retrieveDeviceReachabilityStatusSubscriptionList: an array of Subscription, the live ones.
  fake.route('GET', `${SUBSCRIPTIONS_ROOT}/subscriptions`, () => ({ status: 200, json: live().map(asSubscription) }))
  return api
}

/** A subscription as the spec's Subscription schema has it (no sinkCredential: the token is not given back). */
function asSubscription (sub: Subscription) {
  return {
    id: sub.id,
    protocol: 'HTTP',
    sink: sub.sink,
    types: [sub.type],
    config: { subscriptionDetail: { device: { phoneNumber: sub.phoneNumber } }, subscriptionExpireTime: sub.expireTime },
    startsAt: sub.startsAt,
    expiresAt: sub.expireTime,
    status: 'ACTIVE',
  }
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

import { isIP } from 'node:net'

/**
 * Where status callbacks may go, and whether they may go at all. They are always signed: without a signing secret
 * (CALLBACK_SIGNING_SECRET) there are none. The hosts (CALLBACK_ALLOWED_HOSTS): a host name or IP literal (IPv6 in
 * brackets) matches itself, `*.example.com` any name under example.com (not example.com itself); none listed, any
 * host. Names are compared as the URL parser gives them: lower case, punycode, no trailing dot.
 */
export class CallbackPolicy {
  private readonly exact = new Set<string>()
  private readonly suffixes: string[] = []
  private readonly signed: boolean

  constructor ({ signed, allowedHosts = [] }: { signed: boolean, allowedHosts?: readonly string[] }) {
    this.signed = signed
    for (const pattern of allowedHosts) {
      if (pattern.startsWith('*.')) this.suffixes.push(normalHost(pattern.slice(1)))
      else this.exact.add(normalHost(pattern))
    }
  }

  /** Why a callback may not go to `url`, or undefined when it may. */
  refusal (url: string): string | undefined {
    if (!this.signed) return 'status callbacks are off: the service has no CALLBACK_SIGNING_SECRET to sign them with'
    if (this.exact.size === 0 && this.suffixes.length === 0) return undefined
    let host: string
    try {
      host = normalHost(new URL(url).hostname)
    } catch {
      return 'callback_url is not a URL'
    }
    // A name with an empty label (".example.org", from "http://.example.org/") is no name under example.org.
    if (host.split('.').includes('')) return `callback_url host ${host} is not a host name`
    if (this.exact.has(host) || this.suffixes.some(suffix => host.endsWith(suffix))) return undefined
    return `callback_url host ${host} is not one that callbacks may go to (CALLBACK_ALLOWED_HOSTS)`
  }
}

/**
 * One CALLBACK_ALLOWED_HOSTS entry as CallbackPolicy takes it (the host as the URL parser writes it, `*.` kept), or
 * undefined when it is not a bare host or `*.` and a host: no scheme, port, path or user.
 */
export function parseAllowedHost (pattern: string): string | undefined {
  const wildcard = pattern.startsWith('*.')
  const host = wildcard ? pattern.slice(2) : pattern
  if (!/^([^\s/?#@:[\]\\*]+|\[[0-9A-Fa-f:.]+\])$/.test(host)) return undefined
  let hostname: string
  try {
    hostname = normalHost(new URL(`http://${host}/`).hostname)
  } catch {
    return undefined
  }
  if (hostname.split('.').includes('')) return undefined
  // Names under an IP address do not exist: a wildcard over one would match nothing.
  if (wildcard && (isIP(hostname) !== 0 || hostname.startsWith('['))) return undefined
  return `${wildcard ? '*.' : ''}${hostname}`
}

function normalHost (host: string): string {
  return host.toLowerCase().replace(/\.$/, '')
}

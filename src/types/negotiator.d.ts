// The part of negotiator (jshttp/negotiator, which ships no types) that reachroute uses.
declare module 'negotiator' {
  class Negotiator {
    constructor (request: { headers: Record<string, string | string[] | undefined> })
    /** The most preferred of `available` by the request's Accept header, or undefined when it allows none. */
    mediaType (available: string[]): string | undefined
  }
  export = Negotiator
}

// Every key is `<prefix>{<tag>}:<name>`: keys that a script touches together share one hash tag,
// so the same code runs on a single Redis and on Redis Cluster.

export class RedisKeys {
  constructor (private readonly prefix: string) {}

  /** Everything about one phone number lives under the number's own tag. */
  reachability (phoneNumber: string): string {
    return `${this.prefix}{n:${phoneNumber}}:reach`
  }
}

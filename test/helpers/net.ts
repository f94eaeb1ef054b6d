import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'

/** A TCP port nothing listens on right now, for a process the test starts. */
export async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/**
 * A TCP proxy in front of a real server (a redis-server), to lose an answer on the way back: armed with
 * dropNextAnswer(refuseMs), the next bytes the server sends are not passed on, and the client's connection is cut
 * instead; then, for refuseMs, the proxy does not listen (connections are refused), as a server restarting.
 */
export async function startLossyProxy (targetPort: number): Promise<{ port: number, dropNextAnswer: (refuseMs?: number) => void, close: () => Promise<void> }> {
  let drop = false
  let refuseMs = 0
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    const upstream = connect(targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => {
      if (!drop) {
        client.write(chunk)
        return
      }
      drop = false
      if (refuseMs > 0) {
        server.close()
        setTimeout(() => server.listen(port, '127.0.0.1'), refuseMs).unref()
      }
      client.destroy()
      upstream.destroy()
    })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    port,
    dropNextAnswer: (ms = 0) => {
      drop = true
      refuseMs = ms
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      if (server.listening) {
        server.close()
        await once(server, 'close')
      }
    },
  }
}

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

export interface RawAnswer { status: number, headers: Record<string, string>, body: string, closed: boolean }

/** Writes the bytes as they are, and reads everything the server answers until it closes the connection. */
export async function raw (port: number, request: string, waitMs = 3000): Promise<RawAnswer> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', chunk => chunks.push(chunk))
  socket.on('error', () => {})
  socket.write(request)
  const closed = await Promise.race([
    once(socket, 'close').then(() => true),
    new Promise<boolean>(resolve => setTimeout(() => resolve(false), waitMs)),
  ])
  socket.destroy()
  const text = Buffer.concat(chunks).toString('utf8')
  const [head = '', body = ''] = text.split('\r\n\r\n', 2)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map(line => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
  }))
  return { status: Number(statusLine.split(' ')[1]), headers, body, closed }
}

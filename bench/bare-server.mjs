// The yardstick: a bare Fastify route answering a constant JSON.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
const answer = { id: 'ntf_00_00000000000000000000000000000000', status: 'queued', channel: 'push' }
app.get('/healthz', async () => ({ status: 'ok' }))
app.post('/v1/notifications', async (request, reply) => reply.code(202).send(answer))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })

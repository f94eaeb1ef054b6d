import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import Negotiator from 'negotiator'
import { z } from 'zod'
import { NotAcceptableError } from '../../../src/domain/errors.js'
import { getRefresh, startRefresh } from '../../../src/reports/refresh.js'
import { Reports, toCsv } from '../../../src/reports/reports.js'
import { jsonResponse } from '../../schemas/docs.js'
import { headerDocs, NEXT_CURSOR } from '../../schemas/headers.js'
import { pickProblems } from '../../schemas/problem.js'
import { PhoneNumberInput, queryInt } from '../../schemas/reachability.js'

const security = [{ bearerAuth: [] }]
const CURSOR_EXAMPLE = 'WyJ2MiIsMTc5NTY3MzcwMDAwMCwxNzk1NjczNjAyMzAzLCIrNDQ3OTExMTAwMDAwIl0'
// The cursor names the last item given and the time of the listing's first page, which bounds every later page.
const cursor = (description: string) => z.string().max(400).optional().meta({ description: `next_cursor of the previous page (opaque). ${description}`, examples: [CURSOR_EXAMPLE] })
const StaleCursor = cursor('It names the last number given and the time of the first page, whose `days` cut-off every page keeps: ' +
  'numbers never shift the next page, and a number that comes back, or whose status time turns newer than the cut-off, between pages ' +
  'leaves the listing. Only a number whose status time changes to another time before the cut-off could be given twice or not at all.')
const OfflineCursor = cursor('It names the last device given and the time of the first page, which bounds every page: devices never ' +
  'shift the next page, and none is given twice (bar one whose check was being recorded as the first page was read). A device checked again after the first page leaves the listing (given already or not: ' +
  'its new check, like a device found offline after the first page, is in the next listing).')
const Limit = queryInt({ min: 1, max: 1000, fallback: 100, description: 'Items per page (1 to 1000)' })
const When = z.string().nullable().meta({ examples: ['2026-09-01T08:00:00.000Z'] })

const StaleContact = z.object({
  phone_number: z.string().meta({ description: 'E.164', examples: ['+990123433'] }),
  latest_status_at: z.string().meta({ description: 'When the network last updated its status: no connectivity since', examples: ['2026-09-16T10:00:00.000Z'] }),
  last_reachable_at: When.meta({ description: 'When a check last found it reachable (null: never seen reachable)' }),
  last_checked_at: When.meta({ description: 'When it was last checked' }),
}).meta({ id: 'StaleContact' })

const OfflineDevice = z.object({
  phone_number: z.string().meta({ description: 'E.164', examples: ['+447911123456'] }),
  last_online_at: When.meta({ description: 'When a check last found it reachable (null: never seen online)' }),
  latest_status_at: When.meta({ description: 'When the network last updated its status' }),
  last_checked_at: z.string().meta({ description: 'When it was last checked (and found offline)', examples: ['2026-11-25T10:00:00.000Z'] }),
}).meta({ id: 'OfflineDevice' })

const RefreshJobSchema = z.object({
  id: z.string().meta({ description: 'The job id', examples: ['rfr_0c1d2e3f405162738495a6b7c8d9e0f1'] }),
  status: z.enum(['running', 'completed']).meta({ description: 'running until every number is checked', examples: ['running'] }),
  total: z.number().int().meta({ description: 'Distinct numbers to check', examples: [1200] }),
  done: z.number().int().meta({ description: 'Checked: the upstream answered with news of the number (whatever it said)', examples: [350] }),
  failed: z.number().int().meta({ description: 'Not checked: the upstream gave no answer, or said to try again later (SUPPLIER_ERROR, INTERNAL_ERROR); a stale cache entry standing in does not count as checked', examples: [2] }),
  created_at: z.string().meta({ description: 'When the scan was asked for', examples: ['2026-11-25T10:00:00.000Z'] }),
  completed_at: z.string().nullable().meta({ description: 'When every number was counted (null while running)', examples: [null] }),
}).meta({ id: 'RefreshJob' })

const csvOr = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  headers: headerDocs(NEXT_CURSOR),
  content: {
    'application/json': {
      schema: z.object({
        items: z.array(schema).meta({ description: 'This page\'s items', examples: [[]] }),
        next_cursor: z.string().nullable().meta({ description: 'Give it as cursor for the next page; null at the end', examples: [CURSOR_EXAMPLE] }),
      }),
    },
    'text/csv': { schema: z.string().meta({ description: 'The same items as CSV (RFC 4180), with a header line; the next cursor is in the Link-free header X-Next-Cursor' }) },
  },
})

// What the reports answer with: the CSV is UTF-8 with a header line (RFC 4180's `header=present`).
const REPRESENTATIONS = ['application/json; charset=utf-8', 'text/csv; charset=utf-8; header=present']

/** Whether the page goes out as CSV, by the Accept header's q-values (RFC 9110 §12.5.1); none acceptable is a 406. */
function wantsCsv (accept: string | undefined): boolean {
  // An empty Accept is taken as none at all: some clients send one.
  if (accept === undefined || accept.trim() === '') return false
  const chosen = new Negotiator({ headers: { accept } }).mediaType(REPRESENTATIONS)
  if (chosen === undefined) throw new NotAcceptableError('the Accept header allows neither application/json nor text/csv (UTF-8), the media types of this report')
  return chosen.startsWith('text/csv')
}

const reportRoutes: FastifyPluginAsyncZod = async (app) => {
  const reports = new Reports(app.store)
  app.addHook('onRequest', app.requireScope('reports:read'))

  app.get('/stale-contacts', {
    schema: {
      tags: ['reports'],
      operationId: 'staleContacts',
      summary: 'Contact hygiene: numbers with no connectivity for at least `days` days',
      description: 'Numbers whose device had neither DATA nor SMS connectivity at their last check, and whose latest status time is at least ' +
        '`days` days ago, with the last time each was reachable: the customers whose phone number needs updating. `Accept: text/csv` gives CSV (q-values are honoured; an Accept allowing neither JSON nor CSV is a 406).',
      security,
      querystring: z.object({
        days: queryInt({ min: 1, max: 3650, fallback: 60, description: 'Days without connectivity' }),
        cursor: StaleCursor,
        limit: Limit,
      }),
      response: { 200: csvOr(StaleContact, 'Stale contacts, oldest latest status time first over all the numbers (ties by number)'), ...pickProblems(400, 401, 403, 406, 503) },
    },
  }, async (request, reply) => {
    const csv = wantsCsv(request.headers.accept)
    reply.header('vary', 'Accept')
    const page = await reports.staleContacts(request.query.days, request.query.cursor, request.query.limit)
    if (!csv) return page
    if (page.next_cursor) reply.header('x-next-cursor', page.next_cursor)
    return reply.type('text/csv; charset=utf-8').send(toCsv(page.items, ['phone_number', 'latest_status_at', 'last_reachable_at', 'last_checked_at']))
  })

  app.get('/offline-devices', {
    schema: {
      tags: ['reports'],
      operationId: 'offlineDevices',
      summary: 'IoT fleets: devices not reachable at their last check',
      description: 'With when each was last online and when last checked; `since` keeps only devices checked at or after that time. ' +
        '`Accept: text/csv` gives CSV (q-values are honoured; an Accept allowing neither JSON nor CSV is a 406).',
      security,
      querystring: z.object({
        since: z.iso.datetime({ offset: true }).optional().meta({ description: 'Only devices last checked at or after this time', examples: ['2026-11-24T00:00:00Z'] }),
        cursor: OfflineCursor,
        limit: Limit,
      }),
      response: { 200: csvOr(OfflineDevice, 'Offline devices, least recently checked first over all the numbers (ties by number)'), ...pickProblems(400, 401, 403, 406, 503) },
    },
  }, async (request, reply) => {
    const since = request.query.since ? Date.parse(request.query.since) : -Infinity
    const csv = wantsCsv(request.headers.accept)
    reply.header('vary', 'Accept')
    const page = await reports.offlineDevices(since, request.query.cursor, request.query.limit)
    if (!csv) return page
    if (page.next_cursor) reply.header('x-next-cursor', page.next_cursor)
    return reply.type('text/csv; charset=utf-8').send(toCsv(page.items, ['phone_number', 'last_online_at', 'latest_status_at', 'last_checked_at']))
  })

  app.post('/refresh', {
    bodyLimit: 512 * 1024,
    schema: {
      tags: ['reports'],
      operationId: 'startReportRefresh',
      summary: 'Re-check numbers in the background (a fleet scan)',
      description: 'Every number gets a fresh upstream lookup, paced by the shared upstream budget (REACHABILITY_UPSTREAM_RPS), which updates ' +
        'the cache and the reports. Answers 202 with a job to follow at GET /v1/reports/refresh/{id}.',
      security,
      body: z.strictObject({
        phone_numbers: z.array(PhoneNumberInput).min(1).max(10_000).meta({
          description: '1 to 10,000 numbers, E.164 with or without "+"; repeats are checked once; any invalid number refuses the whole request',
          examples: [['+990123400', '+990123433']],
        }),
      }).meta({ examples: [{ phone_numbers: ['+990123400', '+990123433', '+447911123456'] }] }),
      response: { 202: jsonResponse('The job, started', RefreshJobSchema), ...pickProblems(400, 401, 403, 413, 503) },
    },
  }, async (request, reply) => {
    const job = await startRefresh(app.store, request.principal!.subject, request.body.phone_numbers)
    app.pokeRefresh()
    return reply.code(202).send(job)
  })

  app.get('/refresh/:id', {
    schema: {
      tags: ['reports'],
      operationId: 'getReportRefresh',
      summary: 'Progress of a fleet scan',
      description: 'Counts of numbers checked and failed out of the total; completed when every number is counted.',
      security,
      params: z.object({ id: z.string().max(100).meta({ description: 'The job id', examples: ['rfr_0c1d2e3f405162738495a6b7c8d9e0f1'] }) }),
      response: { 200: jsonResponse('The job', RefreshJobSchema), ...pickProblems(401, 403, 404, 503) },
    },
  }, async (request) => getRefresh(app.store, request.params.id))
}

export default reportRoutes

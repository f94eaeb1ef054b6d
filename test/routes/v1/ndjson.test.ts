import { Readable } from 'node:stream'
import t from 'tap'
import { MAX_LINE_LENGTH, ndjsonLines } from '../../../routes/v1/campaigns/ndjson.js'

const collect = async (chunks: (string | Buffer)[]) => {
  const out: string[] = []
  for await (const line of ndjsonLines(Readable.from(chunks.map(c => Buffer.from(c))))) out.push(line)
  return out
}

t.test('lines split across chunks, CRLF, a character cut in two, a last line without a newline', async t => {
  const euro = Buffer.from('{"name":"€"}\n')
  const cut = euro.indexOf(0xe2) + 1
  t.same(await collect(['{"a":1}\r\n{"b"', ':2}\n\n', euro.subarray(0, cut), euro.subarray(cut), '{"c":3}']),
    ['{"a":1}', '{"b":2}', '', '{"name":"€"}', '{"c":3}'])
})

t.test('a line longer than the limit is refused with its number, before it is held whole', async t => {
  const long = 'x'.repeat(64 * 1024)
  const chunks = ['{"a":1}\n', ...Array.from({ length: Math.ceil(MAX_LINE_LENGTH / long.length) + 1 }, () => long)]
  await t.rejects(collect(chunks), { status: 400, message: /^line 2 is longer than/ })
})

t.test('the limit holds whatever the chunking: a line just over it is refused in one chunk as across many', async t => {
  const over = `${'x'.repeat(MAX_LINE_LENGTH + 1)}\n`
  await t.rejects(collect(['{"a":1}\n', `${over}{"b":2}\n`]), { status: 400, message: /^line 2 is longer than/ }, 'in one chunk, with a line after it')
  await t.rejects(collect(['{"a":1}\n', over.slice(0, 1000), over.slice(1000)]), { status: 400, message: /^line 2 is longer than/ }, 'across two chunks')
  const at = 'x'.repeat(MAX_LINE_LENGTH)
  t.same((await collect(['{"a":1}\n', `${at}\r\n`])).map(l => l.length), [7, MAX_LINE_LENGTH], 'a line at the limit is read (its CR not counted)')
})

t.test('bytes that are not UTF-8 are refused with the line they are on, whatever the chunking; a byte order mark is dropped', async t => {
  const bad = Buffer.concat([Buffer.from('{"a":1}\n{"b":2}\n{"c":"caf'), Buffer.from([0xe9]), Buffer.from('"}\n{"d":4}\n')])
  await t.rejects(collect([bad]), { status: 400, message: 'line 3 is not valid UTF-8: bodies are read as UTF-8', errors: [{ path: 'body.line.3' }] }, 'in one chunk')
  await t.rejects(collect([bad.subarray(0, 10), bad.subarray(10)]), { status: 400, message: /^line 3 / }, 'in a later chunk')
  const cutEuro = Buffer.from('{"x":"€"}\n').subarray(0, 8)
  await t.rejects(collect(['{"a":1}\n', cutEuro]), { status: 400, message: /^line 2 / }, 'a character cut off at the end of the body')
  t.same(await collect([Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}\n')])]), ['{"a":1}'], 'the BOM is not part of the first line')
  // A character begun at the end of one chunk, broken by the next (which decodes on its own): the line it began on.
  const openEnd = Buffer.concat([Buffer.from('{"a":1}\n{"b":"caf'), Buffer.from([0xc3])])
  const rest = Buffer.from(`"}\n${'{"c":3}\n'.repeat(20)}`)
  await t.rejects(collect([openEnd, rest]), { status: 400, message: 'line 2 is not valid UTF-8: bodies are read as UTF-8', errors: [{ path: 'body.line.2' }] },
    'not a line counted from the end of the next chunk')
})

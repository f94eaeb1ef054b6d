// bench/phone: the CPU a request's phone number costs to normalize (src/domain/phone.ts): a real number the
// process has not seen lately (libphonenumber-js parses and checks it), the same number again (the LRU of numbers
// normalized lately), and a number of the +990 test range (no libphonenumber at all). No server, no Redis.
import { build, median, root } from './lib/harness.mjs'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6)
const PER_ROUND = 20_000

await build()
const { normalizePhoneNumber } = await import(`${root}/dist/src/domain/phone.js`)

// Real mobile numbers of a few countries, each one new to the process (the cache holds 20,000: a round's worth).
const COUNTRIES = ['+447911', '+1415823', '+4915123', '+336123', '+3460012', '+3934712']
let serial = 0
const fresh = () => {
  const prefix = COUNTRIES[serial % COUNTRIES.length]
  // Filled to each plan's length: 4 more digits in the US and Spain, 5 in France, 6 elsewhere.
  const digits = ({ '+1415823': 4, '+3460012': 4, '+336123': 5 })[prefix] ?? 6
  return prefix + String(Math.floor(serial++ / COUNTRIES.length) % 10 ** digits).padStart(digits, '0')
}

function timed (inputs) {
  const started = process.hrtime.bigint()
  let valid = 0
  for (const input of inputs) {
    try {
      normalizePhoneNumber(input)
      valid++
    } catch {
      // A refused number costs its check too: counted in the time, not as valid.
    }
  }
  return { us: Number(process.hrtime.bigint() - started) / inputs.length / 1000, valid }
}

const rows = { miss: [], hit: [], test_range: [] }
for (let round = 0; round < ROUNDS; round++) {
  const inputs = Array.from({ length: PER_ROUND }, fresh)
  const miss = timed(inputs)
  if (miss.valid < PER_ROUND * 0.9) throw new Error(`only ${miss.valid} of ${PER_ROUND} numbers were valid`)
  rows.miss.push(miss.us)
  rows.hit.push(timed(inputs).us)
  rows.test_range.push(timed(Array.from({ length: PER_ROUND }, () => '+990123400')).us)
  console.log(`round ${round + 1}: new number ${miss.us.toFixed(2)} µs, seen lately ${rows.hit.at(-1).toFixed(2)} µs, +990 test range ${rows.test_range.at(-1).toFixed(2)} µs`)
}
const result = {
  new_number_us: Number(median(rows.miss).toFixed(2)),
  seen_lately_us: Number(median(rows.hit).toFixed(2)),
  test_range_us: Number(median(rows.test_range).toFixed(2)),
  numbers_per_round: PER_ROUND,
}
console.log(`\nbench/phone (normalizePhoneNumber, ${ROUNDS} rounds of ${PER_ROUND.toLocaleString('en')} numbers, median µs per number)`)
console.table([result])
console.log(JSON.stringify({ phone: result }))

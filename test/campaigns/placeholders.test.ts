import t from 'tap'
import { fillMessage } from '../../src/campaigns/placeholders.js'

t.test('a placeholder is filled from the recipient\'s own vars only: an inherited property is a missing var', async t => {
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    t.same(fillMessage({ sms: { text: `Hi {{${name}}}` } }, { first: 'Ada' }), { missing: name }, name)
    t.same(fillMessage({ sms: { text: `Hi {{${name}}}` } }), { missing: name }, `${name}, no vars`)
  }
  t.same(fillMessage({ sms: { text: 'Hi {{constructor}}' } }, JSON.parse('{"constructor":"Ada"}') as Record<string, string>), { message: { sms: { text: 'Hi Ada' } } },
    'a var of that name given by the recipient is used')
})

t.test('a text longer than the API takes once filled is refused, naming it; the limits count characters, not UTF-16 units', async t => {
  t.same(fillMessage({ sms: { text: '{{a}}' } }, { a: 'x'.repeat(1000) }), { message: { sms: { text: 'x'.repeat(1000) } } })
  t.same(fillMessage({ sms: { text: '{{a}}{{a}}' } }, { a: 'x'.repeat(1000) }),
    { tooLong: 'the SMS text is 2,000 characters once filled from this recipient\'s vars (at most 1,000)' })
  t.same(fillMessage({ sms: { text: '{{a}}' } }, { a: '\u{1F600}'.repeat(1000) }), { message: { sms: { text: '\u{1F600}'.repeat(1000) } } }, '2,000 UTF-16 units, 1,000 characters')
  t.same(fillMessage({ push: { title: 'Hi {{a}}', body: 'b' } }, { a: 'x'.repeat(198) }),
    { tooLong: 'the push title is 201 characters once filled from this recipient\'s vars (at most 200)' })
  t.same(fillMessage({ push: { title: 't', body: '{{a}}{{a}}{{a}}' } }, { a: 'x'.repeat(667) }),
    { tooLong: 'the push body is 2,001 characters once filled from this recipient\'s vars (at most 2,000)' })
  t.same(fillMessage({ push: { title: 't', body: 'b', data: { offer: '{{a}}-{{a}}' } } }, { a: 'x'.repeat(500) }),
    { tooLong: 'the push data "offer" is 1,001 characters once filled from this recipient\'s vars (at most 1,000)' })
  t.same(fillMessage({ sms: { text: '{{a}}{{a}}' } }, {}), { missing: 'a' }, 'a missing var is told first')
})

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

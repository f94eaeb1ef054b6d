import t from 'tap'
import { fillMessage, unfillablePlaceholder } from '../../src/campaigns/placeholders.js'

t.test('a placeholder is filled from the recipient\'s own vars only: an inherited property is a missing var', async t => {
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    t.same(fillMessage({ sms: { text: `Hi {{${name}}}` } }, { first: 'Ada' }), { failed: `the message's {{${name}}} has no value in this recipient's vars` }, name)
    t.same(fillMessage({ sms: { text: `Hi {{${name}}}` } }), { failed: `the message's {{${name}}} has no value in this recipient's vars` }, `${name}, no vars`)
  }
  t.same(fillMessage({ sms: { text: 'Hi {{constructor}}' } }, JSON.parse('{"constructor":"Ada"}') as Record<string, string>), { message: { sms: { text: 'Hi Ada' } } },
    'a var of that name given by the recipient is used')
})

t.test('a text longer than the API takes once filled is refused, naming it; the limits count characters, not UTF-16 units', async t => {
  t.same(fillMessage({ sms: { text: '{{a}}' } }, { a: 'x'.repeat(1000) }), { message: { sms: { text: 'x'.repeat(1000) } } })
  t.same(fillMessage({ sms: { text: '{{a}}{{a}}' } }, { a: 'x'.repeat(1000) }),
    { failed: 'the SMS text is 2,000 characters once filled from this recipient\'s vars (at most 1,000)' })
  t.same(fillMessage({ sms: { text: '{{a}}' } }, { a: '\u{1F600}'.repeat(1000) }), { message: { sms: { text: '\u{1F600}'.repeat(1000) } } }, '2,000 UTF-16 units, 1,000 characters')
  t.same(fillMessage({ push: { title: 'Hi {{a}}', body: 'b' } }, { a: 'x'.repeat(198) }),
    { failed: 'the push title is 201 characters once filled from this recipient\'s vars (at most 200)' })
  t.same(fillMessage({ push: { title: 't', body: '{{a}}{{a}}{{a}}' } }, { a: 'x'.repeat(667) }),
    { failed: 'the push body is 2,001 characters once filled from this recipient\'s vars (at most 2,000)' })
  t.same(fillMessage({ push: { title: 't', body: 'b', data: { offer: '{{a}}-{{a}}' } } }, { a: 'x'.repeat(500) }),
    { failed: 'the push data "offer" is 1,001 characters once filled from this recipient\'s vars (at most 1,000)' })
  t.same(fillMessage({ sms: { text: '{{a}}{{a}}' } }, {}), { failed: 'the message\'s {{a}} has no value in this recipient\'s vars' }, 'a missing var is told first')
})

t.test('any name without braces is a placeholder: filled, or a missing var, never sent as written', async t => {
  const message = { sms: { text: 'Bonjour {{prénom}} / {{ first name }} / {{名前}} / {{a+b}}' } }
  t.same(fillMessage(message, { prénom: 'Zoé', 'first name': 'Ada', 名前: 'Yuki', 'a+b': 'c' }), { message: { sms: { text: 'Bonjour Zoé / Ada / Yuki / c' } } })
  t.same(fillMessage(message, { prénom: 'Zoé' }), { failed: 'the message\'s {{first name}} has no value in this recipient\'s vars' })
  t.same(fillMessage(message), { failed: 'the message\'s {{prénom}} has no value in this recipient\'s vars' })
  t.same(fillMessage({ sms: { text: 'braces { and } alone, {single}' } }), { message: { sms: { text: 'braces { and } alone, {single}' } } }, 'not placeholders')
})

t.test('a text left empty once filled fails the recipient (the API takes no empty SMS text, push title or body); push data may be empty', async t => {
  t.same(fillMessage({ sms: { text: '{{code}}' } }, { code: '' }), { failed: 'the SMS text is empty once filled from this recipient\'s vars' })
  t.same(fillMessage({ push: { title: '{{t}}', body: 'b' } }, { t: '' }), { failed: 'the push title is empty once filled from this recipient\'s vars' })
  t.same(fillMessage({ push: { title: 't', body: '{{b}}' } }, { b: '' }), { failed: 'the push body is empty once filled from this recipient\'s vars' })
  t.same(fillMessage({ push: { title: 't', body: 'b', data: { k: '{{v}}' } } }, { v: '' }), { message: { push: { title: 't', body: 'b', data: { k: '' } } } })
  t.same(fillMessage({ sms: { text: 'Hi {{name}}' } }, { name: '' }), { message: { sms: { text: 'Hi ' } } }, 'empty var, text not empty')
})

t.test('a placeholder no vars could fill is named when the campaign is made', async t => {
  t.equal(unfillablePlaceholder({ sms: { text: 'Hi {{name}}' } }), undefined)
  t.equal(unfillablePlaceholder({ sms: { text: 'Hi {{ }}' } }), 'the SMS text has an empty placeholder {{ }}')
  t.equal(unfillablePlaceholder({ push: { title: 't', body: 'b', data: { k: `{{${'n'.repeat(65)}}}` } } }),
    'the push data "k" has a placeholder whose name is longer than 64 characters (a vars key\'s limit)')
  t.equal(unfillablePlaceholder({ push: { title: `{{${'é'.repeat(64)}}}`, body: 'b' } }), undefined, '64 characters is a vars key\'s limit')
})

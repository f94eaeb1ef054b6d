import { MESSAGE_LIMITS, type NotificationMessage } from '../notifications/types.js'

const PLACEHOLDER = /\{\{\s*([\w.-]+)\s*\}\}/g

/** Characters as JSON Schema's maxLength (and the API's limits) count them: code points. */
const characters = (text: string) => {
  let n = 0
  for (const _ of text) n++
  return n
}

/**
 * The message with each `{{name}}` filled from vars; or the first name vars do not have; or, when a filled text
 * is longer than a message may be (the limits of POST /v1/notifications), which one and how long.
 */
export function fillMessage (message: NotificationMessage, vars: Record<string, string> = {}): { message: NotificationMessage } | { missing: string } | { tooLong: string } {
  let missing: string | undefined
  let tooLong: string | undefined
  const fill = (text: string, what: string, limit: number) => {
    const filled = text.replace(PLACEHOLDER, (whole, name: string) => {
      // Own properties only: `{{constructor}}` is a missing var, not Object's constructor.
      const value = Object.hasOwn(vars, name) ? vars[name] : undefined
      if (value === undefined) {
        missing ??= name
        return whole
      }
      return value
    })
    if (filled !== text && filled.length > limit) {
      const length = characters(filled)
      if (length > limit) tooLong ??= `the ${what} is ${length.toLocaleString('en')} characters once filled from this recipient's vars (at most ${limit.toLocaleString('en')})`
    }
    return filled
  }
  const filled: NotificationMessage = {}
  if (message.sms) filled.sms = { text: fill(message.sms.text, 'SMS text', MESSAGE_LIMITS.smsText) }
  if (message.push) {
    filled.push = {
      title: fill(message.push.title, 'push title', MESSAGE_LIMITS.pushTitle),
      body: fill(message.push.body, 'push body', MESSAGE_LIMITS.pushBody),
      ...(message.push.data
        ? { data: Object.fromEntries(Object.entries(message.push.data).map(([k, v]) => [k, fill(v, `push data "${k}"`, MESSAGE_LIMITS.pushDataValue)])) }
        : {}),
    }
  }
  if (missing !== undefined) return { missing }
  return tooLong === undefined ? { message: filled } : { tooLong }
}

import { MESSAGE_LIMITS, type NotificationMessage } from '../notifications/types.js'

/**
 * `{{name}}`: any name without braces, spaces around it ignored, so `{{prénom}}` and `{{first name}}` are placeholders
 * too (a name not matched here would be sent to the customer as written).
 */
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g
/** The longest name a recipient's vars may hold (routes/schemas/campaign.ts). */
export const MAX_PLACEHOLDER_NAME = 64

/** Characters as JSON Schema's maxLength (and the API's limits) count them: code points. */
const characters = (text: string) => {
  let n = 0
  for (const _ of text) n++
  return n
}

/** The texts of a message, each with what it is, its least and most characters (those of POST /v1/notifications). */
function texts (message: NotificationMessage): { what: string, text: string, min: number, max: number }[] {
  const out: { what: string, text: string, min: number, max: number }[] = []
  if (message.sms) out.push({ what: 'SMS text', text: message.sms.text, min: 1, max: MESSAGE_LIMITS.smsText })
  if (message.push) {
    out.push({ what: 'push title', text: message.push.title, min: 1, max: MESSAGE_LIMITS.pushTitle })
    out.push({ what: 'push body', text: message.push.body, min: 1, max: MESSAGE_LIMITS.pushBody })
    for (const [k, v] of Object.entries(message.push.data ?? {})) out.push({ what: `push data "${k}"`, text: v, min: 0, max: MESSAGE_LIMITS.pushDataValue })
  }
  return out
}

/**
 * A placeholder no recipient's vars could fill (an empty name, or one longer than a vars key may be), with the text it
 * is in; checked when the campaign is created, so it is refused then rather than failing every recipient.
 */
export function unfillablePlaceholder (message: NotificationMessage): string | undefined {
  for (const { what, text } of texts(message)) {
    for (const [whole, name] of text.matchAll(PLACEHOLDER)) {
      if (name!.length === 0) return `the ${what} has an empty placeholder ${whole}`
      if (characters(name!) > MAX_PLACEHOLDER_NAME) return `the ${what} has a placeholder whose name is longer than ${MAX_PLACEHOLDER_NAME} characters (a vars key's limit)`
    }
  }
  return undefined
}

/**
 * The message with each `{{name}}` filled from vars; or why this recipient's message cannot be sent: the first name
 * vars do not have, a filled text left empty, or one longer than a message may be (the limits of POST
 * /v1/notifications).
 */
export function fillMessage (message: NotificationMessage, vars: Record<string, string> = {}): { message: NotificationMessage } | { failed: string } {
  let missing: string | undefined
  let wrong: string | undefined
  const fill = (text: string, what: string, min: number, max: number) => {
    const filled = text.replace(PLACEHOLDER, (whole, name: string) => {
      // Own properties only: `{{constructor}}` is a missing var, not Object's constructor.
      const value = Object.hasOwn(vars, name) ? vars[name] : undefined
      if (value === undefined) {
        missing ??= name
        return whole
      }
      return value
    })
    if (filled === text) return text
    if (filled.length < min) wrong ??= `the ${what} is empty once filled from this recipient's vars`
    if (filled.length > max) {
      const length = characters(filled)
      if (length > max) wrong ??= `the ${what} is ${length.toLocaleString('en')} characters once filled from this recipient's vars (at most ${max.toLocaleString('en')})`
    }
    return filled
  }
  const filled: NotificationMessage = {}
  if (message.sms) filled.sms = { text: fill(message.sms.text, 'SMS text', 1, MESSAGE_LIMITS.smsText) }
  if (message.push) {
    filled.push = {
      title: fill(message.push.title, 'push title', 1, MESSAGE_LIMITS.pushTitle),
      body: fill(message.push.body, 'push body', 1, MESSAGE_LIMITS.pushBody),
      ...(message.push.data
        ? { data: Object.fromEntries(Object.entries(message.push.data).map(([k, v]) => [k, fill(v, `push data "${k}"`, 0, MESSAGE_LIMITS.pushDataValue)])) }
        : {}),
    }
  }
  if (missing !== undefined) return { failed: `the message's {{${missing}}} has no value in this recipient's vars` }
  return wrong === undefined ? { message: filled } : { failed: wrong }
}

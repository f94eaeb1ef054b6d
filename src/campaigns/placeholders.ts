import type { NotificationMessage } from '../notifications/types.js'

const PLACEHOLDER = /\{\{\s*([\w.-]+)\s*\}\}/g

/** The message with each `{{name}}` filled from vars, or the first name vars do not have. */
export function fillMessage (message: NotificationMessage, vars: Record<string, string> = {}): { message: NotificationMessage } | { missing: string } {
  let missing: string | undefined
  const fill = (text: string) => text.replace(PLACEHOLDER, (whole, name: string) => {
    // Own properties only: `{{constructor}}` is a missing var, not Object's constructor.
    const value = Object.hasOwn(vars, name) ? vars[name] : undefined
    if (value === undefined) {
      missing ??= name
      return whole
    }
    return value
  })
  const filled: NotificationMessage = {}
  if (message.sms) filled.sms = { text: fill(message.sms.text) }
  if (message.push) {
    filled.push = {
      title: fill(message.push.title),
      body: fill(message.push.body),
      ...(message.push.data ? { data: Object.fromEntries(Object.entries(message.push.data).map(([k, v]) => [k, fill(v)])) } : {}),
    }
  }
  return missing === undefined ? { message: filled } : { missing }
}

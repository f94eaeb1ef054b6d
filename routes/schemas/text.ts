import { z } from 'zod'
import { textProblem } from '../../src/domain/unicode.js'

/**
 * A text field of a request: `min` to `max` characters of well-formed Unicode, without control characters other than
 * tab, line feed and carriage return (see textProblem). Such a text is stored, sent to providers and echoed back as
 * it came: one that strict JSON parsers or UTF-8 cannot carry is refused here, with where it breaks.
 */
export function Text (min: number, max: number) {
  return (min > 0 ? z.string().min(min) : z.string()).max(max).superRefine((value, ctx) => {
    const problem = textProblem(value)
    if (problem) ctx.addIssue({ code: 'custom', message: problem })
  })
}

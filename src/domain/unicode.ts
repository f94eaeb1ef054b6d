// Texts from outside (a token's subject, a provider's ids and error texts) may hold a lone UTF-16 surrogate: half
// an emoji. UTF-8 writes every one as U+FFFD, and Lua's JSON decoder refuses one.

/** In a `u` regex a surrogate pair is one code point: only lone surrogates match. */
const LONE_SURROGATE = /\p{Cs}/u
const LONE_SURROGATES = /\p{Cs}/gu

export function hasLoneSurrogate (text: string): boolean {
  return LONE_SURROGATE.test(text)
}

/** The text with each lone surrogate as U+FFFD (String.prototype.toWellFormed, not in this TypeScript's lib). */
export function wellFormed (text: string): string {
  return hasLoneSurrogate(text) ? text.replace(LONE_SURROGATES, '\uFFFD') : text
}

/** What a text from a request may not hold: a lone surrogate, or a C0 control character other than tab, LF and CR. */
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const NOT_TEXT = /[\p{Cs}\u0000-\u0008\u000b\u000c\u000e-\u001f]/u

/**
 * Why a text given in a request is refused, or undefined when it is fine. A lone surrogate (half an emoji, written
 * `\ud83d` in JSON) is no character: JSON that holds one is refused by strict parsers, and UTF-8 has no way to write
 * it. Control characters (NUL and the like) have no place in a message, a reference or a key; tab, line feed and
 * carriage return may be.
 */
export function textProblem (text: string): string | undefined {
  const found = NOT_TEXT.exec(text)
  if (!found) return undefined
  const code = found[0].charCodeAt(0)
  const at = `at character ${found.index + 1}`
  if (code >= 0xd800) return `not well-formed Unicode: a lone UTF-16 surrogate (${escaped(found[0])}, half of a pair) ${at}`
  return `a control character (U+${code.toString(16).toUpperCase().padStart(4, '0')}) ${at}: only tab, line feed and carriage return are allowed`
}

/** What `visible` writes as `\uXXXX`: control characters, lone surrogates and invisible format characters. */
const UNSEEN = /[\p{Cc}\p{Cf}\p{Cs}]/gu

/** One UTF-16 unit as `\uXXXX`. */
function escaped (unit: string): string {
  return `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`
}

/** A text of the caller's quoted in an answer's text, with what cannot be seen (or sent as UTF-8) written as `\uXXXX`. */
export function visible (text: string): string {
  return text.replace(UNSEEN, escaped)
}

/**
 * A text as an answer quotes it back: in double quotes (its quotes and backslashes escaped, as JSON writes them), with
 * control characters, lone surrogates and invisible format characters (a bidi override, a zero-width space) written
 * as `\uXXXX`, so the reader sees what was sent.
 */
export function quoted (text: string): string {
  return `"${visible(text.replace(/["\\]/g, '\\$&'))}"`
}

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

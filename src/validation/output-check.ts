/**
 * Whether an LLM output is self-consistent: the text the requester received is what the
 * engine delivers for the signed token ids. The receipt commits to both (see `outputHashOf`),
 * so an inconsistent pair is the signer's statement and fails the miner; the gateway can no
 * longer be blamed for it. The engine's rule (src/inference/engine.ts, TextAssembler): the
 * text is the tokens' text, except that a job ending on a stop string has its text cut just
 * before that stop string (the tokens keep it, since the model drew them).
 */
export function textMatchesTokens (tokensText: string, text: string, finishReason: 'stop' | 'length' | 'abort', stop: readonly string[]): boolean {
  if (text === tokensText) return true
  if (finishReason !== 'stop' || !tokensText.startsWith(text)) return false
  const rest = tokensText.slice(text.length)
  return stop.some(s => s.length > 0 && rest.startsWith(s))
}

/**
 * The embedding check: a validator re-embeds the job's inputs with the claimed model and
 * compares each returned vector with its own by cosine similarity. Embeddings are not
 * bit-reproducible across hardware (float sums in another order), but they drift by far less
 * than another model, another text or noise moves them; `bench:structured` measures both
 * sides on the built-in tiny-embed: the same build gives cosine 1 (to 1e-7), another model of
 * the same dimension about 0.01-0.2, another text about 0.6, random vectors about 0. The
 * threshold 0.99 leaves a hundredfold margin for hardware drift (cosine ≥ 0.9999 between CPU
 * thread counts and GPU backends on real models is typical) and is far above any cheat
 * measured. A vector count or dimension other than the validator's fails outright. Pure.
 */

export const EMBEDDING_COSINE_THRESHOLD = 0.99

export function cosine (a: Float32Array, b: Float32Array): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) { const x = a[i]!; const y = b[i]!; dot += x * y; na += x * x; nb += y * y }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

export interface EmbeddingScore {
  /** The lowest cosine over the job's vectors (0 when a count or dimension differs). */
  minCosine: number
  fail: boolean
}

export function scoreEmbeddings (claimed: readonly Float32Array[], own: readonly Float32Array[], threshold = EMBEDDING_COSINE_THRESHOLD): EmbeddingScore {
  if (claimed.length !== own.length || claimed.length === 0) return { minCosine: 0, fail: true }
  let min = Infinity
  for (let i = 0; i < own.length; i++) {
    const a = claimed[i]!
    const b = own[i]!
    if (a.length !== b.length || a.some(x => !Number.isFinite(x))) return { minCosine: 0, fail: true }
    min = Math.min(min, cosine(a, b))
  }
  return { minCosine: min, fail: !(min >= threshold) }
}

/**
 * The embedding check: a validator re-embeds the job's inputs with the claimed model and
 * compares each returned vector with its own by cosine similarity. Embeddings are not
 * bit-reproducible across hardware (float sums in another order), but they drift by far less
 * than another model, another text or noise moves them; `bench:structured` measures both
 * sides on the built-in tiny-embed (40 jobs of 8 inputs): honest vectors at cosine 1 on the
 * same build and against a 2-thread engine; at most 0.055 for another model of the same
 * dimension, 0.923 for unrelated text (the tiny model's vectors share a large common
 * component), 0.386 for random vectors. The threshold 0.99 sits above every cheat measured and
 * leaves room for cross-hardware drift, which was not measured here (no GPU): it is a choice,
 * not a measurement. A near-duplicate text (0.999) passes: no cosine check can tell it apart.
 * A vector count or dimension other than the validator's fails outright. Pure.
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

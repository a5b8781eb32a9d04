import { describe, expect, it } from 'vitest'
import { ClipTokenizer, CONTEXT_LENGTH } from '../../../src/inference/image/index.js'
import { byteCharsInVocabOrder, bytesToUnicode, preTokenize, trainTinyBpe } from '../../../src/inference/image/tokenizer.js'

/** A CLIP-shaped vocabulary with SD 1.5's special ids, built by hand. */
function sd15Like (): ClipTokenizer {
  const vocab: Record<string, number> = {}
  byteCharsInVocabOrder().forEach((c, i) => { vocab[c] = i; vocab[`${c}</w>`] = 256 + i })
  const merges: Array<[string, string]> = [['c', 'a'], ['ca', 't</w>'], ['d', 'o'], ['do', 'g</w>'], ['a', 'n'], ['an', 'd</w>']]
  merges.forEach(([a, b], i) => { vocab[a + b] = 512 + i })
  vocab['<|startoftext|>'] = 49406
  vocab['<|endoftext|>'] = 49407
  return new ClipTokenizer(vocab, merges)
}

describe('CLIP BPE tokenizer', () => {
  it('byte table covers all 256 bytes with distinct printable characters', () => {
    const t = bytesToUnicode()
    expect(new Set(t).size).toBe(256)
    expect(t[65]).toBe('A')
    expect(t[32]).toBe('Ġ')
  })

  it('pre-tokenizes like CLIP: lower case, collapsed spaces, contractions, single digits, punctuation runs', () => {
    expect(preTokenize('  A  Cat\'s   2024!!  ')).toEqual(['a', 'cat', '\'s', '2', '0', '2', '4', '!!'])
  })

  it('merges by rank and marks word ends: "cat and dog" → cat</w> and</w> dog</w>', () => {
    const tok = sd15Like()
    expect(tok.bpe('cat')).toEqual(['cat</w>'])
    expect(tok.bpe('cats')).toEqual(['ca', 't', 's</w>'])
    expect(tok.encode('Cat and DOG')).toEqual([513, 517, 515])
  })

  it('SD 1.5 framing: 77 ids, start 49406, end 49407, padded with 49407', () => {
    const { ids, truncated } = sd15Like().encodeForModel('a cat')
    expect(ids).toHaveLength(CONTEXT_LENGTH)
    // 320 is a</w> in SD 1.5's real vocabulary too: the byte characters come in CLIP's order
    expect(ids.slice(0, 4)).toEqual([49406, 320, 513, 49407])
    expect(ids.slice(4).every(i => i === 49407)).toBe(true)
    expect(truncated).toBe(false)
  })

  it('an empty prompt is start, end and padding', () => {
    const { ids } = sd15Like().encodeForModel('')
    expect(ids[0]).toBe(49406)
    expect(ids.slice(1).every(i => i === 49407)).toBe(true)
  })

  it('truncates to 75 tokens and says so', () => {
    const { ids, truncated } = sd15Like().encodeForModel('cat '.repeat(100))
    expect(truncated).toBe(true)
    expect(ids).toHaveLength(77)
    expect(ids[76]).toBe(49407)
    expect(ids.slice(1, 76).every(i => i === 513)).toBe(true)
  })

  it('reads vocab.json + merges.txt (with the #version header) and rejects malformed files', () => {
    const { vocab, merges } = trainTinyBpe('the cat sat on the mat with the hat', 10)
    const txt = '#version: 0.2\n' + merges.map(m => m.join(' ')).join('\n') + '\n'
    const tok = ClipTokenizer.fromFiles(JSON.stringify(vocab), txt)
    expect(tok.bpe('the')).toEqual(['the</w>'])
    expect(() => ClipTokenizer.fromFiles('{"a": "x"}', txt)).toThrow(/integer ids/)
    expect(() => ClipTokenizer.fromFiles('not json', txt)).toThrow(/not JSON/)
    expect(() => ClipTokenizer.fromFiles(JSON.stringify(vocab), 'a b c\n')).toThrow(/bad line/)
    expect(() => ClipTokenizer.fromFiles(JSON.stringify({ a: 1 }), '')).toThrow(/startoftext/)
  })
})

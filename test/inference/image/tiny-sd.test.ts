import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { buildTinySd, REQUIRED_FILES, tinySdBuilders } from '../../../src/inference/image/index.js'
import { folderId, tinyModelBuilders } from '../../../src/inference/index.js'
import { tempDir } from '../../helpers.js'

describe('built-in tiny SD models', () => {
  it('are byte-identical for the same options and differ by seed and layout; every SD file is there and small', async () => {
    const { dir, cleanup } = await tempDir('heurist-tinysd-')
    try {
      const a = await buildTinySd(join(dir, 'a'))
      const b = await buildTinySd(join(dir, 'b'))
      const c = await buildTinySd(join(dir, 'c'), { seed: 7 })
      const d = await buildTinySd(join(dir, 'd'), { idsType: 'int32' })
      expect(await folderId(a)).toBe(await folderId(b))
      expect(await folderId(c)).not.toBe(await folderId(a))
      expect(await folderId(d)).not.toBe(await folderId(a))
      let total = 0
      for (const f of REQUIRED_FILES) total += (await readFile(join(a, f))).length
      expect(total).toBeLessThan(256 * 1024)
      const merges = await readFile(join(a, 'tokenizer/merges.txt'), 'utf8')
      expect(merges.startsWith('#version: 0.2\n')).toBe(true)
    } finally {
      await cleanup()
    }
  })

  it('tiny-sd is registered with the model cache\'s built-in builders as an image model', () => {
    const b = tinyModelBuilders.find(x => x.name === 'tiny-sd')
    expect(b?.kind).toBe('image')
    expect(tinySdBuilders.map(x => x.name)).toEqual(['tiny-sd'])
  })
})

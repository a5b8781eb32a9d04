import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import OpenAI from 'openai'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { ensureTinyModels, createLlamaEngine, createImageEngine, TINY_SD_NAME, type LlamaEngine, type ImageEngine, type ModelInfo, type ImageModel } from '../../src/inference/index.js'
import { Accounts, createGateway, createLocalBackend, type Gateway } from '../../src/gateway/index.js'
import { tempDir } from '../helpers.js'

/**
 * The gateway in front of the real engines (llama.cpp on the built-in tiny GGUF, the ONNX
 * image pipeline on tiny-sd), driven by the official openai client: what comes out through
 * the gateway is exactly what the engine gives for the same seed.
 */
let store: Store
let cleanup: () => Promise<void>
let llm: LlamaEngine
let images: ImageEngine
let sd: ImageModel
let info: ModelInfo
let gw: Gateway
let client: OpenAI

beforeAll(async () => {
  const t = await tempDir('heurist-gw-engine-')
  cleanup = t.cleanup
  store = await Store.open(`${t.dir}/store`)
  const models = await ensureTinyModels(`${t.dir}/models`, { names: ['tiny-llama', TINY_SD_NAME] })
  const tiny = models.find(m => m.name === 'tiny-llama')!
  const sdModel = models.find(m => m.name === TINY_SD_NAME)!
  llm = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 2 })
  info = await llm.load(tiny.path, { id: tiny.id, name: tiny.name })
  images = createImageEngine({ threads: 1, executionProvider: 'cpu' })
  sd = await images.load(sdModel.path, { id: sdModel.id, name: sdModel.name })
  const accounts = new Accounts(store)
  const { apiKey } = await accounts.create(10n ** 18n)
  gw = createGateway({ backend: createLocalBackend({ models: [info, sd.info], llm, image: sd, pricePerUnit: 1n }), accounts, logger: silentLogger(), vouchers: null, transcripts: null }, { port: 0 })
  await gw.start()
  client = new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 60_000 })
})

afterAll(async () => {
  await gw?.stop()
  await sd?.dispose()
  await images?.dispose()
  await llm?.stop()
  await store?.close()
  await cleanup?.()
})

describe('gateway on the real engines', () => {
  it('lists the loaded models by name', async () => {
    expect((await client.models.list()).data.map(m => m.id).sort()).toEqual(['tiny-llama', TINY_SD_NAME].sort())
  })

  it('chat, streamed and not, gives the engine\'s own text for the same seed', async () => {
    const messages = [{ role: 'user' as const, content: 'Say something.' }]
    const direct = await llm.generate({ modelId: info.id, input: messages, sampling: { seed: 7, temperature: 0.8, topP: 1, topK: 0, maxTokens: 24, stop: [] } })
    const r = await client.chat.completions.create({ model: 'tiny-llama', messages, seed: 7, temperature: 0.8, max_tokens: 24 })
    expect(r.choices[0]!.message.content).toBe(direct.text)
    expect(r.usage!.completion_tokens).toBe(direct.usage.outputTokens)
    expect(r.choices[0]!.finish_reason).toBe('length')
    const s = await client.chat.completions.create({ model: 'tiny-llama', messages, seed: 7, temperature: 0.8, max_tokens: 24, stream: true })
    let text = ''
    let pieces = 0
    let usage: OpenAI.CompletionUsage | null | undefined
    for await (const c of s) {
      const d = c.choices[0]?.delta.content
      if (d != null && d !== '') { text += d; pieces++ }
      if (c.usage != null) usage = c.usage
    }
    expect(text).toBe(direct.text)
    expect(pieces).toBeGreaterThan(1)
    expect(usage?.completion_tokens).toBe(direct.usage.outputTokens)
  })

  it('plain completion', async () => {
    const direct = await llm.generate({ modelId: info.id, input: 'Once upon', sampling: { seed: 3, temperature: 0, topP: 1, topK: 0, maxTokens: 10, stop: [] } })
    const r = await client.completions.create({ model: 'tiny-llama', prompt: 'Once upon', seed: 3, temperature: 0, max_tokens: 10 })
    expect(r.choices[0]!.text).toBe(direct.text)
  })

  it('image generation returns the pipeline\'s PNG as b64_json', async () => {
    const r = await client.images.generate({ model: TINY_SD_NAME, prompt: 'a red square', size: '64x64', response_format: 'b64_json', seed: 5, steps: 2 } as never)
    const png = Buffer.from(r.data![0]!.b64_json!, 'base64')
    expect(png.subarray(1, 4).toString()).toBe('PNG')
    const direct = await sd.generate({ modelId: sd.info.id, prompt: 'a red square', negativePrompt: '', width: 64, height: 64, steps: 2, guidanceScale: 7.5, seed: 5, scheduler: 'euler' })
    expect(Buffer.from(direct.png).equals(png)).toBe(true)
  })
})

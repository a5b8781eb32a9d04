import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encodeOnnxModel, encodeOnnxModelWithExternalData, type Initializer, type OnnxGraph, type OnnxNode, type ValueInfo } from './onnx-writer.js'
import { Pcg32 } from './prng.js'
import { float32ToHalfArray } from '../float16.js'
import { CONTEXT_LENGTH, trainTinyBpe } from './tokenizer.js'

/**
 * Built-in tiny Stable-Diffusion-shaped models: three small ONNX graphs in the SD 1.5 export
 * layout and tensor names, plus a small CLIP-style BPE vocabulary, all generated from a seed.
 * They exercise every stage of the real pipeline (tokenizer, text encoder, UNet loop with
 * guidance, VAE decode) in milliseconds; the pictures are seeded textures tinted by the prompt.
 *
 *   text_encoder: input_ids [B,77] → Gather(token emb) + pos emb → MatMul → Tanh → last_hidden_state [B,77,D]
 *   unet:         out_sample = Conv3x3(sample)·(1 + 0.3·tanh(mean(ehs)·Wg)) + 0.5·tanh(mean(ehs)·Wb) + 0.2·sin(t/1000·k)
 *   vae_decoder:  latent_sample [B,4,h,w] → Resize ×8 (linear) → Conv3x3 4→16 → Tanh → Conv1x1 16→3 → Tanh → sample [B,3,8h,8w]
 */

export interface TinySdOptions {
  /** Seed of the weights. Default 0x5d. */
  seed?: number
  /** dtype of `input_ids`. Default int64 (most exports); int32 is the other common layout. */
  idsType?: 'int64' | 'int32'
  /** dtype of `timestep`. Default int64; `float` as some exports have it. */
  timestepType?: 'int64' | 'float'
  /** Float tensors at the graph boundaries in float16 (as fp16 exports). Default false. */
  fp16?: boolean
  /**
   * The whole graph in float16, weights included (as `--fp16` exports ship: every float
   * initializer, input, output and Cast target half precision; Resize's scales stay float as
   * ONNX requires). Implies float16 boundaries. Default false.
   */
  fp16Weights?: boolean
  /** Initializers in `model.onnx_data` beside each `model.onnx` (as large UNet exports ship). Default false. */
  externalData?: boolean
  /** Hidden size D of the text encoder. Default 32. */
  hiddenSize?: number
  /** Hidden size the UNet expects for encoder_hidden_states (a mismatch makes a broken model, for tests). */
  unetHiddenSize?: number
  /** Latent channels the UNet takes (4 in SD; anything else makes a broken model, for tests). */
  latentChannels?: number
  /** Upsampling of the VAE decoder (8 in SD; anything else makes a broken model, for tests). */
  vaeScale?: number
}

export const TINY_SD_NAME = 'tiny-sd'

/** A few hundred words of prompt-like English the tiny vocabulary is trained on. */
const CORPUS = `a photo of a cat sitting on a chair. a portrait of a woman with long hair, highly detailed,
digital painting, artstation, concept art, smooth, sharp focus, illustration. anime girl with blue eyes
and a red dress, standing in a field of flowers at sunset. a beautiful landscape with mountains and a lake,
trees, clouds, sky, golden hour, cinematic lighting, 4k, 8k, masterpiece, best quality. a cute dog playing
in the snow. a city street at night with neon lights and rain, cyberpunk. an astronaut riding a horse on
the moon. a bowl of fruit on a wooden table, still life, oil painting. a castle on a hill, fantasy art.
a robot in a garden, studio lighting, trending on artstation. the sea with waves and a boat, watercolor.
a forest with a river, morning light, fog. a red car on the road, photorealistic. a black and white
photo of an old man smiling. a small house in the woods, cozy, warm light, winter. waifu, anime style,
pink hair, school uniform, smiling, looking at viewer, detailed background. low quality, blurry, ugly,
bad anatomy, watermark, text, worst quality, deformed, extra fingers.`

const MERGES = 300

function floats (rng: Pcg32, n: number, scale: number): Float32Array {
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = ((rng.nextUint32() / 4294967296) * 2 - 1) * scale
  return out
}

const f32 = (name: string, dims: number[], data: Float32Array): Initializer => ({ name, type: 'float', dims, data })
const i64 = (name: string, values: number[]): Initializer => ({ name, type: 'int64', dims: [values.length], data: BigInt64Array.from(values.map(v => BigInt(v))) })

/**
 * Makes boundary float tensors float16 when asked: a Cast after each float16 input and before
 * each float16 output, so the body of the graph stays float32.
 */
function withBoundaryTypes (g: OnnxGraph, fp16: boolean, floatInputs: string[], floatOutputs: string[]): OnnxGraph {
  if (!fp16) return g
  const nodes: OnnxNode[] = []
  const rename = (n: string): string => `${n}__f32`
  for (const name of floatInputs) nodes.push({ op: 'Cast', inputs: [name], outputs: [rename(name)], attrs: { to: { i: 1 } } })
  const body = g.nodes.map(n => ({
    ...n,
    inputs: n.inputs.map(i => floatInputs.includes(i) ? rename(i) : i),
    outputs: n.outputs.map(o => floatOutputs.includes(o) ? rename(o) : o)
  }))
  nodes.push(...body)
  for (const name of floatOutputs) nodes.push({ op: 'Cast', inputs: [rename(name)], outputs: [name], attrs: { to: { i: 10 } } })
  const retype = (v: ValueInfo): ValueInfo => v.type === 'float' ? { ...v, type: 'float16' } : v
  return { ...g, nodes, inputs: g.inputs.map(retype), outputs: g.outputs.map(retype) }
}

export function tinyTextEncoder (rng: Pcg32, vocabSize: number, d: number, idsType: 'int64' | 'int32', fp16: boolean): OnnxGraph {
  const g: OnnxGraph = {
    name: 'text_encoder',
    initializers: [
      f32('token_embedding', [vocabSize, d], floats(rng, vocabSize * d, 1)),
      f32('position_embedding', [CONTEXT_LENGTH, d], floats(rng, CONTEXT_LENGTH * d, 0.3)),
      f32('proj', [d, d], floats(rng, d * d, 1.5 / Math.sqrt(d))),
      f32('inv_sqrt_pos', [CONTEXT_LENGTH, 1], Float32Array.from({ length: CONTEXT_LENGTH }, (_, i) => 1 / Math.sqrt(i + 1))),
      i64('axis_1', [1])
    ],
    nodes: [
      { op: 'Gather', inputs: ['token_embedding', 'input_ids'], outputs: ['tok'], attrs: { axis: { i: 0 } } },
      { op: 'Add', inputs: ['tok', 'position_embedding'], outputs: ['h0'] },
      // a running sum stands in for causal attention: every later position sees the whole prompt
      { op: 'CumSum', inputs: ['h0', 'axis_1'], outputs: ['hc'] },
      { op: 'Mul', inputs: ['hc', 'inv_sqrt_pos'], outputs: ['hs'] },
      { op: 'MatMul', inputs: ['hs', 'proj'], outputs: ['h1'] },
      { op: 'Tanh', inputs: ['h1'], outputs: ['last_hidden_state'] }
    ],
    inputs: [{ name: 'input_ids', type: idsType, shape: ['batch', CONTEXT_LENGTH] }],
    outputs: [{ name: 'last_hidden_state', type: 'float', shape: ['batch', CONTEXT_LENGTH, d] }]
  }
  return withBoundaryTypes(g, fp16, [], ['last_hidden_state'])
}

export function tinyUnet (rng: Pcg32, d: number, timestepType: 'int64' | 'float', fp16: boolean, c = 4): OnnxGraph {
  // Conv kernel: mostly the identity on each channel, plus a little spatial and channel mixing.
  const kernel = floats(rng, c * c * 9, 0.12)
  for (let o = 0; o < c; o++) kernel[(o * c + o) * 9 + 4] = (kernel[(o * c + o) * 9 + 4] ?? 0) + 0.7
  const g: OnnxGraph = {
    name: 'unet',
    initializers: [
      f32('conv_w', [c, c, 3, 3], kernel),
      f32('conv_b', [c], floats(rng, c, 0.05)),
      f32('gate_w', [d, c], floats(rng, d * c, 2 / Math.sqrt(d))),
      f32('bias_w', [d, c], floats(rng, d * c, 3 / Math.sqrt(d))),
      f32('mix_w', [d, c * c], floats(rng, d * c * c, 3 / Math.sqrt(d))),
      f32('c_mix', [1], Float32Array.of(0.4)),
      i64('shape_bcc', [-1, c, c]),
      i64('shape_bcn', [0, c, -1]),
      f32('time_k', [1, c], Float32Array.from({ length: c }, (_, i) => 3 + 2 * i)),
      f32('c_03', [1], Float32Array.of(0.3)),
      f32('c_05', [1], Float32Array.of(0.5)),
      f32('c_02', [1], Float32Array.of(0.2)),
      f32('c_one', [1], Float32Array.of(1)),
      f32('c_milli', [1], Float32Array.of(0.001)),
      i64('shape_bc11', [-1, c, 1, 1]),
      i64('axes_1', [1])
    ],
    nodes: [
      { op: 'Conv', inputs: ['sample', 'conv_w', 'conv_b'], outputs: ['x'], attrs: { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } } },
      { op: 'ReduceMean', inputs: ['encoder_hidden_states'], outputs: ['cond'], attrs: { axes: { ints: [1] }, keepdims: { i: 0 } } },
      { op: 'MatMul', inputs: ['cond', 'gate_w'], outputs: ['g0'] },
      { op: 'Tanh', inputs: ['g0'], outputs: ['g1'] },
      { op: 'Mul', inputs: ['g1', 'c_03'], outputs: ['g2'] },
      { op: 'Add', inputs: ['g2', 'c_one'], outputs: ['g3'] },
      { op: 'Reshape', inputs: ['g3', 'shape_bc11'], outputs: ['gate'] },
      { op: 'MatMul', inputs: ['cond', 'bias_w'], outputs: ['b0'] },
      { op: 'Tanh', inputs: ['b0'], outputs: ['b1'] },
      { op: 'Mul', inputs: ['b1', 'c_05'], outputs: ['b2'] },
      { op: 'Reshape', inputs: ['b2', 'shape_bc11'], outputs: ['bias'] },
      { op: 'Cast', inputs: ['timestep'], outputs: ['tf'], attrs: { to: { i: 1 } } },
      { op: 'Mul', inputs: ['tf', 'c_milli'], outputs: ['t0'] },
      { op: 'Unsqueeze', inputs: ['t0', 'axes_1'], outputs: ['t1'] },
      { op: 'Mul', inputs: ['t1', 'time_k'], outputs: ['t2'] },
      { op: 'Sin', inputs: ['t2'], outputs: ['t3'] },
      { op: 'Mul', inputs: ['t3', 'c_02'], outputs: ['t4'] },
      { op: 'Reshape', inputs: ['t4', 'shape_bc11'], outputs: ['temb'] },
      // prompt-dependent channel mixing: which mix of the noise survives depends on the prompt
      { op: 'MatMul', inputs: ['cond', 'mix_w'], outputs: ['m0'] },
      { op: 'Tanh', inputs: ['m0'], outputs: ['m1'] },
      { op: 'Mul', inputs: ['m1', 'c_mix'], outputs: ['m2'] },
      { op: 'Reshape', inputs: ['m2', 'shape_bcc'], outputs: ['mix'] },
      { op: 'Reshape', inputs: ['sample', 'shape_bcn'], outputs: ['sflat'] },
      { op: 'MatMul', inputs: ['mix', 'sflat'], outputs: ['mflat'] },
      { op: 'Shape', inputs: ['sample'], outputs: ['sshape'] },
      { op: 'Reshape', inputs: ['mflat', 'sshape'], outputs: ['mixed'] },
      { op: 'Mul', inputs: ['x', 'gate'], outputs: ['y00'] },
      { op: 'Add', inputs: ['y00', 'mixed'], outputs: ['y0'] },
      { op: 'Add', inputs: ['y0', 'bias'], outputs: ['y1'] },
      { op: 'Add', inputs: ['y1', 'temb'], outputs: ['out_sample'] }
    ],
    inputs: [
      { name: 'sample', type: 'float', shape: ['batch', c, 'height', 'width'] },
      { name: 'timestep', type: timestepType, shape: timestepType === 'float' ? [1] : ['steps'] },
      { name: 'encoder_hidden_states', type: 'float', shape: ['batch', CONTEXT_LENGTH, d] }
    ],
    outputs: [{ name: 'out_sample', type: 'float', shape: ['batch', c, 'height', 'width'] }]
  }
  const floatIns = timestepType === 'float' ? ['sample', 'timestep', 'encoder_hidden_states'] : ['sample', 'encoder_hidden_states']
  return withBoundaryTypes(g, fp16, floatIns, ['out_sample'])
}

export function tinyVaeDecoder (rng: Pcg32, fp16: boolean, scale = 8): OnnxGraph {
  const hidden = 16
  const g: OnnxGraph = {
    name: 'vae_decoder',
    initializers: [
      f32('roi', [0], new Float32Array(0)),
      f32('scales', [4], Float32Array.of(1, 1, scale, scale)),
      // latents arrive divided by 0.18215, so the first layer undoes that scale
      f32('conv1_w', [hidden, 4, 3, 3], floats(rng, hidden * 4 * 9, 0.18215 * 0.9)),
      f32('conv1_b', [hidden], floats(rng, hidden, 0.2)),
      f32('conv2_w', [3, hidden, 1, 1], floats(rng, 3 * hidden, 0.6)),
      f32('conv2_b', [3], floats(rng, 3, 0.2))
    ],
    nodes: [
      { op: 'Resize', inputs: ['latent_sample', 'roi', 'scales'], outputs: ['up'], attrs: { mode: { s: 'linear' } } },
      { op: 'Conv', inputs: ['up', 'conv1_w', 'conv1_b'], outputs: ['h0'], attrs: { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } } },
      { op: 'Tanh', inputs: ['h0'], outputs: ['h1'] },
      { op: 'Conv', inputs: ['h1', 'conv2_w', 'conv2_b'], outputs: ['h2'], attrs: { kernel_shape: { ints: [1, 1] } } },
      { op: 'Tanh', inputs: ['h2'], outputs: ['sample'] }
    ],
    inputs: [{ name: 'latent_sample', type: 'float', shape: ['batch', 4, 'height', 'width'] }],
    outputs: [{ name: 'sample', type: 'float', shape: ['batch', 3, 'out_height', 'out_width'] }]
  }
  return withBoundaryTypes(g, fp16, ['latent_sample'], ['sample'])
}

/** Initializers that must stay float32 whatever the model's precision (Resize's roi and scales). */
const KEEP_FLOAT = new Set(['roi', 'scales'])

/** The graph in float16 throughout: half-precision weights, boundaries and Cast targets. */
function allHalf (g: OnnxGraph): OnnxGraph {
  const retype = (v: ValueInfo): ValueInfo => v.type === 'float' ? { ...v, type: 'float16' } : v
  return {
    ...g,
    initializers: g.initializers.map(t => t.type === 'float' && !KEEP_FLOAT.has(t.name) ? { ...t, type: 'float16', data: float32ToHalfArray(t.data as Float32Array) } : t),
    nodes: g.nodes.map(n => n.op === 'Cast' && n.attrs?.to !== undefined && 'i' in n.attrs.to && n.attrs.to.i === 1 ? { ...n, attrs: { ...n.attrs, to: { i: 10 } } } : n),
    inputs: g.inputs.map(retype),
    outputs: g.outputs.map(retype)
  }
}

/** The name of the external data file beside each `model.onnx` (`externalData`). */
export const EXTERNAL_DATA_FILE = 'model.onnx_data'

/**
 * Writes a tiny SD model folder at `dir` (text_encoder/, unet/, vae_decoder/, tokenizer/)
 * and returns `dir`. The same options give byte-identical files.
 */
export async function buildTinySd (dir: string, options: TinySdOptions = {}): Promise<string> {
  const seed = options.seed ?? 0x5d
  const d = options.hiddenSize ?? 32
  const fp16Weights = options.fp16Weights ?? false
  const fp16 = (options.fp16 ?? false) && !fp16Weights
  const { vocab, merges } = trainTinyBpe(CORPUS, MERGES)
  const vocabSize = Math.max(...Object.values(vocab)) + 1
  const rng = new Pcg32(seed)
  const graphs: Array<[string, OnnxGraph]> = [
    ['text_encoder', tinyTextEncoder(rng, vocabSize, d, options.idsType ?? 'int64', fp16)],
    ['unet', tinyUnet(rng, options.unetHiddenSize ?? d, options.timestepType ?? 'int64', fp16, options.latentChannels ?? 4)],
    ['vae_decoder', tinyVaeDecoder(rng, fp16, options.vaeScale ?? 8)]
  ]
  for (const [sub, g] of graphs) {
    const graph = fp16Weights ? allHalf(g) : g
    await mkdir(join(dir, sub), { recursive: true })
    if (options.externalData === true) {
      const { model, data } = encodeOnnxModelWithExternalData(graph, { location: EXTERNAL_DATA_FILE })
      await writeFile(join(dir, sub, 'model.onnx'), model)
      await writeFile(join(dir, sub, EXTERNAL_DATA_FILE), data)
    } else {
      await writeFile(join(dir, sub, 'model.onnx'), encodeOnnxModel(graph))
    }
  }
  await mkdir(join(dir, 'tokenizer'), { recursive: true })
  await writeFile(join(dir, 'tokenizer', 'vocab.json'), JSON.stringify(vocab))
  await writeFile(join(dir, 'tokenizer', 'merges.txt'), '#version: 0.2\n' + merges.map(([a, b]) => `${a} ${b}`).join('\n') + '\n')
  await writeFile(join(dir, 'model_index.json'), JSON.stringify({ _class_name: 'OnnxStableDiffusionPipeline', heurist_tiny: { seed, ...options } }, null, 2) + '\n')
  return dir
}

/** The built-in image models, in the shape of `TinyModelBuilder` (see ../tiny.ts). */
export const tinySdBuilders = [
  { name: TINY_SD_NAME, kind: 'image' as const, build: async (dir: string): Promise<string> => await buildTinySd(join(dir, TINY_SD_NAME)) }
]

export function isTinySdName (name: string): boolean {
  return tinySdBuilders.some(b => b.name === name)
}

// Public surface of src/inference. Other areas import only from here.
export * from './types.js'
export { ModelCache, folderId, sha256OfFile, summarizeGguf, type CachedModel, type AddOptions, type PullOptions, type PullProgress, type GgufSummary } from './cache.js'
export { LlamaEngine, createLlamaEngine, defaultLlamaEngineOptions, checkSampling, type LlamaEngineOptions, type LoadOptions } from './engine.js'
export { probeHardware, getLlamaRuntime, resolveThreads, defaultLlamaRuntimeOptions, type HardwareInfo, type GpuSetting, type LlamaRuntimeOptions } from './runtime.js'
export { tinyModelBuilders, ensureTinyModels, type TinyModelBuilder, type EnsureTinyOptions } from './tiny.js'
export { buildTinyLlama, tinyLlamaSpecs, tinyVocabulary, type TinyLlamaSpec } from './tiny-llama.js'
export { readGguf, encodeGguf, looksLikeGguf, GgufType, type GgufInfo, type GgufTensorSpec, type GgufValue } from './gguf.js'
export * from './image/index.js'

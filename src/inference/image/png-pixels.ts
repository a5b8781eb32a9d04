import sharp from 'sharp'
import { pixelSha256 } from './compare.js'

/**
 * The identity of a delivered PNG: the sha256 of its decoded RGB pixels (what image receipts
 * commit to; PNG encoders differ, pixels do not). Receivers (the gateway, `infer --network`)
 * hash what they got rather than trust the miner's claim. Null when the bytes are not a PNG
 * that decodes within `maxPixels`.
 */
export async function deliveredPixels (png: Uint8Array, maxPixels = 4096 * 4096): Promise<{ pixelSha256: string, width: number, height: number } | null> {
  try {
    const { data, info } = await sharp(png, { limitInputPixels: maxPixels }).removeAlpha().raw().toBuffer({ resolveWithObject: true })
    if (info.format !== 'raw' || info.channels !== 3) return null
    return { pixelSha256: pixelSha256(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)), width: info.width, height: info.height }
  } catch {
    return null
  }
}

/** Map bounded in size: past `max` entries the oldest is dropped (a flood of identities cannot grow memory). */
export class BoundedMap<V> extends Map<string, V> {
  constructor (private readonly max: number) { super() }
  override set (k: string, v: V): this {
    if (!this.has(k) && this.size >= this.max) {
      const oldest = this.keys().next().value
      if (oldest !== undefined) this.delete(oldest)
    }
    return super.set(k, v)
  }
}

/**
 * CRC-32C (Castagnoli), the checksum Google Cloud Storage reports in
 * `x-goog-hash: crc32c=`. Node 20 ships only plain CRC-32 in zlib, and only
 * from 22.2 on, so this is the classic reflected, table-driven form.
 */

const table = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  table[n] = c >>> 0;
}

/** Incremental, so a streamed upload is checksummed chunk by chunk. */
export class Crc32c {
  #state = 0xffffffff;

  update(chunk: Uint8Array): this {
    let c = this.#state;
    for (let i = 0; i < chunk.length; i++) {
      c = table[(c ^ chunk[i]!) & 0xff]! ^ (c >>> 8);
    }
    this.#state = c;
    return this;
  }

  /** The checksum as GCS sends it: big-endian uint32, base64. */
  digestBase64(): string {
    const out = Buffer.alloc(4);
    out.writeUInt32BE((this.#state ^ 0xffffffff) >>> 0);
    return out.toString('base64');
  }
}

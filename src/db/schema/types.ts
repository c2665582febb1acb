import { customType } from 'drizzle-orm/pg-core';

/** float32 vectors stored as little-endian bytes: compact, and read back without parsing. */
export const vector = customType<{ data: Float32Array; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  toDriver: (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength),
  fromDriver: (b) => {
    const copy = Uint8Array.from(b);
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  },
});

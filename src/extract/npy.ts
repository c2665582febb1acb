/**
 * NumPy's `.npy` format, version 1.0 (numpy.org/neps/nep-0001-npy-format.html), for a 2-D array of
 * little-endian float32 in C order: `np.load("embeddings.npy")` opens it as is.
 */
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]); // \x93NUMPY, v1.0

/** The header of a `rows × cols` float32 array; data follows it, `rows * cols * 4` bytes. */
export function npyHeader(rows: number, cols: number): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  // Magic (8) + header length (2) + dict + padding + '\n' is a multiple of 64, as numpy writes it.
  const unpadded = MAGIC.length + 2 + dict.length + 1;
  const padded = Math.ceil(unpadded / 64) * 64;
  const text = dict + ' '.repeat(padded - unpadded) + '\n';
  const len = Buffer.alloc(2);
  len.writeUInt16LE(text.length);
  return Buffer.concat([MAGIC, len, Buffer.from(text, 'latin1')]);
}

/** Float32 rows as the little-endian bytes the header above describes. */
export function float32Bytes(rows: Float32Array[]): Buffer {
  const out = Buffer.alloc(rows.reduce((n, r) => n + r.length * 4, 0));
  let at = 0;
  for (const r of rows) for (const v of r) at = out.writeFloatLE(v, at);
  return out;
}

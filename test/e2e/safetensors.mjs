// A tiny, independent safetensors reader/writer for the E2E tests (deliberately not the product's reader:
// the tests must be able to catch the product's own mistakes).
import fs from 'node:fs';

const BYTES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** Parses a .safetensors file into { metadata, tensors: Map<name, { dtype, shape, data: Buffer }> }; throws on anything malformed. */
export function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 8) throw new Error(`${file}: shorter than the 8-byte header length`);
  const n = Number(buf.readBigUInt64LE(0));
  if (n <= 0 || 8 + n > buf.length) throw new Error(`${file}: header length ${n} out of range (file ${buf.length} bytes)`);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const dataStart = 8 + n;
  const tensors = new Map();
  let metadata = {};
  const spans = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = info; continue; }
    const { dtype, shape, data_offsets: [a, b] } = info;
    if (!(dtype in BYTES)) throw new Error(`${file}: ${name}: unknown dtype ${dtype}`);
    const count = shape.reduce((x, y) => x * y, 1);
    if (b - a !== count * BYTES[dtype]) throw new Error(`${file}: ${name}: ${b - a} bytes for ${dtype}${JSON.stringify(shape)}`);
    if (dataStart + b > buf.length) throw new Error(`${file}: ${name}: data past end of file`);
    tensors.set(name, { dtype, shape, data: buf.subarray(dataStart + a, dataStart + b) });
    spans.push([a, b]);
  }
  spans.sort((x, y) => x[0] - y[0]);
  let end = 0;
  for (const [a, b] of spans) {
    if (a !== end) throw new Error(`${file}: data section has a gap or overlap at byte ${a}`);
    end = b;
  }
  if (dataStart + end !== buf.length) throw new Error(`${file}: ${buf.length - dataStart - end} trailing bytes after the data section`);
  return { metadata, tensors };
}

/** Writes tensors (Map or object of { dtype, shape, data: Buffer|TypedArray }) as .safetensors. */
export function writeSafetensors(file, tensors, metadata) {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  const parts = [];
  for (const [name, t] of entries) {
    const data = Buffer.isBuffer(t.data) ? t.data : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + data.length] };
    off += data.length;
    parts.push(data);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, Buffer.from(json, 'utf8'));
    for (const p of parts) fs.writeSync(fd, p);
  } finally {
    fs.closeSync(fd);
  }
}

function f16ToF32(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Element values as numbers (for comparing F32/F16/BF16 outputs). */
export function toFloats({ dtype, data }) {
  const n = data.length / BYTES[dtype];
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (dtype === 'F32') out[i] = data.readFloatLE(i * 4);
    else if (dtype === 'F64') out[i] = data.readDoubleLE(i * 8);
    else if (dtype === 'F16') out[i] = f16ToF32(data.readUInt16LE(i * 2));
    else if (dtype === 'BF16') { const b = Buffer.alloc(4); b.writeUInt16LE(data.readUInt16LE(i * 2), 2); out[i] = b.readFloatLE(0); }
    else throw new Error(`toFloats: ${dtype} not supported`);
  }
  return out;
}

/** Raw integer codes for 16-bit floats, to compare in units in the last place. */
function codes16(data) {
  const out = new Int32Array(data.length / 2);
  for (let i = 0; i < out.length; i++) {
    const u = data.readUInt16LE(i * 2);
    out[i] = u & 0x8000 ? -(u & 0x7fff) : u; // monotone ordering of float codes
  }
  return out;
}

/**
 * Compares two safetensors files tensor by tensor with the oracle tolerances (F32: 1e-6 absolute; F16/BF16: 1 ulp).
 * Returns a list of human-readable mismatches (empty when they agree).
 */
export function compareSafetensors(actualFile, expectedFile, { f32Abs = 1e-6, ulps = 1 } = {}) {
  const a = readSafetensors(actualFile).tensors;
  const e = readSafetensors(expectedFile).tensors;
  const problems = [];
  for (const name of e.keys()) if (!a.has(name)) problems.push(`missing tensor ${name}`);
  for (const name of a.keys()) if (!e.has(name)) problems.push(`unexpected tensor ${name}`);
  for (const [name, et] of e) {
    const at = a.get(name);
    if (!at) continue;
    if (at.dtype !== et.dtype || JSON.stringify(at.shape) !== JSON.stringify(et.shape)) {
      problems.push(`${name}: ${at.dtype}${JSON.stringify(at.shape)} vs expected ${et.dtype}${JSON.stringify(et.shape)}`);
      continue;
    }
    if (et.dtype === 'F16' || et.dtype === 'BF16') {
      const ac = codes16(at.data), ec = codes16(et.data);
      let worst = 0, at_ = -1;
      for (let i = 0; i < ec.length; i++) { const d = Math.abs(ac[i] - ec[i]); if (d > worst) { worst = d; at_ = i; } }
      if (worst > ulps) problems.push(`${name}: ${worst} ulp off at element ${at_}`);
    } else if (et.dtype === 'F32' || et.dtype === 'F64') {
      const av = toFloats(at), ev = toFloats(et);
      let worst = 0, at_ = -1;
      for (let i = 0; i < ev.length; i++) { const d = Math.abs(av[i] - ev[i]); if (!(d <= worst)) { worst = d; at_ = i; } }
      if (!(worst <= f32Abs)) problems.push(`${name}: max abs diff ${worst} at element ${at_}`);
    } else if (!at.data.equals(et.data)) {
      problems.push(`${name}: bytes differ`);
    }
  }
  return problems;
}

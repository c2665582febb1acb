"""Read and write .safetensors with numpy/torch only (the `safetensors` package is not installable here).

Format: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}} with
an optional "__metadata__" {str: str}, then the raw little-endian tensor bytes.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

# safetensors dtype -> (torch dtype, numpy dtype used for the raw bytes). BF16 has no numpy dtype:
# its bytes go through int16 and are reinterpreted by torch.
_DTYPES = {
    'F64': (torch.float64, np.float64),
    'F32': (torch.float32, np.float32),
    'F16': (torch.float16, np.float16),
    'BF16': (torch.bfloat16, np.int16),
    'I64': (torch.int64, np.int64),
    'I32': (torch.int32, np.int32),
    'I16': (torch.int16, np.int16),
    'I8': (torch.int8, np.int8),
    'U8': (torch.uint8, np.uint8),
    'BOOL': (torch.bool, np.bool_),
}
_BY_TORCH = {t: name for name, (t, _) in _DTYPES.items()}


def load_file(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file, as CPU torch tensors in their stored dtype."""
    tensors, _ = load_file_with_metadata(path)
    return tensors


def load_file_with_metadata(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise ValueError(f'{path}: too short for a safetensors file')
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8 : 8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', None) or {}
    body = memoryview(data)[8 + n :]
    out: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        dtype = info['dtype']
        if dtype not in _DTYPES:
            raise ValueError(f'{path}: tensor {name} has unsupported dtype {dtype}')
        tdt, ndt = _DTYPES[dtype]
        start, end = info['data_offsets']
        if not 0 <= start <= end <= len(body):
            raise ValueError(f'{path}: tensor {name} has offsets {start}..{end} outside the data ({len(body)} bytes)')
        arr = np.frombuffer(body[start:end], dtype=np.dtype(ndt).newbyteorder('<'))
        expected = int(np.prod(info['shape'], dtype=np.int64))
        if arr.size != expected:
            raise ValueError(f'{path}: tensor {name} has {arr.size} elements, shape {info["shape"]} needs {expected}')
        # copy: frombuffer views are read-only and tie the whole file's bytes to each tensor
        t = torch.from_numpy(arr.astype(arr.dtype.newbyteorder('='), copy=True)).reshape(info['shape'])
        out[name] = t.view(torch.bfloat16) if tdt is torch.bfloat16 else t
    return out, meta


def save_file(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write tensors (any of the dtypes above) to .safetensors. Shared/tied tensors are written once per key."""
    header: dict[str, object] = {}
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):  # sorted keys, like the reference implementation
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _BY_TORCH:
            raise ValueError(f'tensor {name}: unsupported dtype {t.dtype}')
        raw = (t.view(torch.int16) if t.dtype is torch.bfloat16 else t).numpy()
        blob = raw.astype(raw.dtype.newbyteorder('<'), copy=False).tobytes()
        header[name] = {'dtype': _BY_TORCH[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    hbytes = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hbytes += b' ' * (-len(hbytes) % 8)  # pad so tensor data starts 8-byte aligned
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a PyTorch .bin/.pt/.pth (torch.load on CPU)."""
    p = Path(path)
    if p.suffix == '.safetensors':
        return load_file(p)
    sd = torch.load(str(p), map_location='cpu')
    # Original BLIP checkpoints wrap the weights in {'model': ...}; HF .bin files are flat.
    if isinstance(sd, dict) and 'model' in sd and isinstance(sd['model'], dict):
        sd = sd['model']
    if not isinstance(sd, dict):
        raise ValueError(f'{path}: expected a state dict, got {type(sd).__name__}')
    return {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}

"""The compute challenge both sides agree on: matrices derived from the nonce, element by element.

Every input element is a pure function of (seed, matrix, row, column) through `lowbias32`, a
32-bit integer hash, so the GPU generates whole matrices with vectorised integer arithmetic
(torch, in `gpu_jobs.attest_hardware`) and the verifier regenerates one row of A and one column
of B on the CPU (numpy) for every opened cell. Values are signed bytes divided by 16: exactly
representable in bf16 and fp16 (8 significant bits), but not in fp8, so a product computed
from lower-precision inputs is off by far more than the output rounding the tolerance allows.

The multiply of the hash is split into 16-bit halves so no intermediate leaves the signed
64-bit range: torch (CPU and CUDA) and numpy then compute bit-identical values without
relying on integer overflow behaviour.

Which cells are opened is decided after the result is committed (Fiat-Shamir): SHA-256 of the
nonce and the Merkle root, so the prover cannot know them while computing.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Any, Literal

GENERATOR = "lowbias32-v1"
MASK32 = 0xFFFFFFFF
_C1 = 0x7FEB352D
_C2 = 0x846CA68B
Dtype = Literal["bf16", "fp16"]
# Unit round-off of the output format: half the distance between neighbouring values.
OUTPUT_UNIT_ROUNDOFF: dict[str, float] = {"bf16": 2.0**-8, "fp16": 2.0**-11}
ELEMENT_BYTES = 2
MAX_N = 65536
SCALE = 16  # inputs are int8 / SCALE


@dataclass(frozen=True)
class Seeds:
    """Four 32-bit seeds: row and column keys of A, then of B."""

    a_row: int
    a_col: int
    b_row: int
    b_col: int


def seeds(nonce: str) -> Seeds:
    digest = hashlib.sha256(b"lotabots-challenge-v1\x00" + nonce.encode()).digest()
    return Seeds(*struct.unpack(">4I", digest[:16]))


def mul32(x: Any, constant: int) -> Any:
    """(x * constant) mod 2^32 for x < 2^32 without any product above 2^48 (ints, numpy, torch)."""
    low, high = constant & 0xFFFF, constant >> 16
    return (x * low + (((x * high) & 0xFFFF) << 16)) & MASK32


def lowbias32(x: Any) -> Any:
    """Chris Wellons' lowbias32 integer hash; works element-wise on int64 arrays and tensors."""
    x = x ^ (x >> 16)
    x = mul32(x, _C1)
    x = x ^ (x >> 15)
    x = mul32(x, _C2)
    return x ^ (x >> 16)


def key(seed: int, index: int) -> int:
    return int(lowbias32(seed ^ lowbias32(index & MASK32)))


def to_int8(hashed: Any) -> Any:
    """The signed byte an element hash stands for (top 8 bits, minus 128)."""
    return (hashed >> 24) - 128


def a_row(s: Seeds, i: int, n: int) -> Any:
    """Row i of A as int8 values (numpy int64 array)."""
    import numpy as np

    cols = np.arange(n, dtype=np.int64)
    col_keys = lowbias32(np.int64(s.a_col) ^ lowbias32(cols))
    return to_int8(lowbias32(np.int64(key(s.a_row, i)) ^ col_keys))


def b_col(s: Seeds, j: int, n: int) -> Any:
    """Column j of B as int8 values (numpy int64 array)."""
    import numpy as np

    rows = np.arange(n, dtype=np.int64)
    row_keys = lowbias32(np.int64(s.b_row) ^ lowbias32(rows))
    return to_int8(lowbias32(row_keys ^ np.int64(key(s.b_col, j))))


def exact_cell(s: Seeds, i: int, j: int, n: int) -> tuple[float, float]:
    """(exact value of C[i, j], sum of |a*b| over the dot product): integer arithmetic, no rounding."""
    import numpy as np

    products = a_row(s, i, n) * b_col(s, j, n)
    return float(int(products.sum())) / SCALE**2, float(int(np.abs(products).sum())) / SCALE**2


def tolerance(dtype: str, n: int, exact: float, abs_sum: float) -> float:
    """How far a correct result may be from the exact value.

    Output rounding to `dtype` (unit round-off u on |exact|, doubled for split-K partial
    results cuBLAS may round), plus fp32 accumulation error, taken as the statistical
    sqrt(n) bound with a factor 4 margin, on the sum of |a*b|.
    """
    u = OUTPUT_UNIT_ROUNDOFF[dtype]
    return 2 * u * abs(exact) + 4 * math.sqrt(n) * 2.0**-24 * abs_sum + 2.0**-10


def decode(dtype: str, raw: bytes) -> list[float]:
    """Little-endian bf16/fp16 bytes as floats."""
    count = len(raw) // ELEMENT_BYTES
    if dtype == "fp16":
        return list(struct.unpack(f"<{count}e", raw))
    halves = struct.unpack(f"<{count}H", raw)
    return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]


def open_cells(nonce: str, root: str, n: int, count: int) -> list[tuple[int, int]]:
    """The cells the prover must open: distinct (i, j), drawn from SHA-256(nonce, root, counter)."""
    cells: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    counter = 0
    limit = min(count, n * n)
    while len(cells) < limit:
        digest = hashlib.sha256(f"lotabots-cells-v1\x00{nonce}\x00{root}\x00{counter}".encode()).digest()
        counter += 1
        i, j = struct.unpack(">QQ", digest[:16])
        cell = (i % n, j % n)
        if cell not in seen:
            seen.add(cell)
            cells.append(cell)
    return cells


def leaf_elems_for(n: int) -> int:
    """Merkle leaf size in elements: a whole row for small n, 1024-element segments above."""
    return n if n <= 1024 else 1024

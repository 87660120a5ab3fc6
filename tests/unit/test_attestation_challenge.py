"""The challenge both sides compute: the device generator (torch) and the verifier (numpy) agree
bit for bit, Merkle paths bind segments to positions, and the tolerance separates a correct
bf16 product from one computed in lower precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpu_jobs import attest_hardware
from lotabots.attestation import challenge, merkle


@pytest.mark.parametrize("n", [16, 300])
def test_torch_generator_matches_the_verifier_element_by_element(n: int) -> None:
    seeds = challenge.seeds("nonce-for-parity-test-0123456789")
    a = attest_hardware.generate(torch, seeds.a_row, seeds.a_col, n, torch.float32, torch.device("cpu"))
    b = attest_hardware.generate(torch, seeds.b_row, seeds.b_col, n, torch.float32, torch.device("cpu"))
    for i in (0, 1, n // 2, n - 1):
        assert np.array_equal(a[i].numpy() * challenge.SCALE, challenge.a_row(seeds, i, n))
        assert np.array_equal(b[:, i].numpy() * challenge.SCALE, challenge.b_col(seeds, i, n))


def test_lowbias32_agrees_on_python_ints_numpy_and_torch() -> None:
    values = [0, 1, 2**31 - 1, 2**31, 2**32 - 1, 123456789]
    python = [challenge.lowbias32(v) for v in values]
    assert list(challenge.lowbias32(np.array(values, dtype=np.int64))) == python
    assert challenge.lowbias32(torch.tensor(values, dtype=torch.int64)).tolist() == python
    assert all(0 <= v < 2**32 for v in python) and len(set(python)) == len(python)


def test_inputs_are_exact_in_bf16_and_fp16() -> None:
    values = torch.arange(-128, 128, dtype=torch.float32) / challenge.SCALE
    assert torch.equal(values.to(torch.bfloat16).to(torch.float32), values)
    assert torch.equal(values.to(torch.float16).to(torch.float32), values)
    assert not torch.equal(values.to(torch.float8_e4m3fn).to(torch.float32), values)


def test_exact_cell_is_the_integer_dot_product() -> None:
    seeds = challenge.seeds("x" * 40)
    n = 64
    exact, abs_sum = challenge.exact_cell(seeds, 3, 5, n)
    products = challenge.a_row(seeds, 3, n) * challenge.b_col(seeds, 5, n)
    assert exact == products.sum() / 256 and abs_sum == np.abs(products).sum() / 256


def test_cells_depend_on_nonce_and_root_and_are_distinct() -> None:
    cells = challenge.open_cells("n1", "r1", 8, 24)
    assert len(set(cells)) == 24 and cells == challenge.open_cells("n1", "r1", 8, 24)
    assert cells != challenge.open_cells("n1", "r2", 8, 24) != challenge.open_cells("n2", "r1", 8, 24)
    assert len(challenge.open_cells("n", "r", 2, 24)) == 4  # never more cells than the matrix has


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 13])
def test_merkle_paths_verify_only_at_their_position(count: int) -> None:
    leaves = [merkle.leaf_hash(k, bytes([k]) * 4) for k in range(count)]
    tree = merkle.levels(leaves)
    root = tree[-1][0].hex()
    for k in range(count):
        path = merkle.path(tree, k)
        assert merkle.verify_path(leaves[k], k, count, path, root)
        assert not merkle.verify_path(merkle.leaf_hash(k, b"evil"), k, count, path, root)
        if count > 1:
            other = (k + 1) % count
            assert not merkle.verify_path(leaves[k], other, count, path, root)
    assert not merkle.verify_path(leaves[0], 0, count, ["00" * 32] * 40, root)
    assert not merkle.verify_path(leaves[0], count, count, [], root)


def test_decode_reads_bf16_and_fp16() -> None:
    values = torch.tensor([1.5, -2.25, 1000.0])
    assert challenge.decode("bf16", values.to(torch.bfloat16).view(torch.int16).numpy().tobytes()) == [
        1.5,
        -2.25,
        1000.0,
    ]
    assert challenge.decode("fp16", values.to(torch.float16).numpy().tobytes()) == [1.5, -2.25, 1000.0]


def test_tolerance_accepts_bf16_rounding_and_rejects_fp8_inputs() -> None:
    seeds = challenge.seeds("tolerance-check-nonce-000000000000")
    n = 256
    a = attest_hardware.generate(torch, seeds.a_row, seeds.a_col, n, torch.float32, torch.device("cpu"))
    b = attest_hardware.generate(torch, seeds.b_row, seeds.b_col, n, torch.float32, torch.device("cpu"))
    good = (a.to(torch.bfloat16) @ b.to(torch.bfloat16)).to(torch.float32)
    low = (a.to(torch.float8_e4m3fn).to(torch.float32) @ b.to(torch.float8_e4m3fn).to(torch.float32)).to(
        torch.bfloat16
    )
    within_good = within_low = 0
    for i, j in challenge.open_cells("t", "r", n, 64):
        exact, abs_sum = challenge.exact_cell(seeds, i, j, n)
        allowed = challenge.tolerance("bf16", n, exact, abs_sum)
        within_good += abs(float(good[i, j]) - exact) <= allowed
        within_low += abs(float(low[i, j]) - exact) <= allowed
    assert within_good == 64
    assert within_low <= 16  # most fp8 cells are far outside; a verdict fails on any one

"""The float precision a step computes in (torch-only, no model code).

  fp32  exact float32 matmuls
  tf32  TensorFloat-32 matmuls on CUDA (the default: within 0.2 % of fp32's median final MSE)
  bf16  bfloat16 autocast inside the step, TF32 for what stays float32
CPU matmuls stay exact float32 whatever the precision. Prompts, targets and the loss are float32,
and the final MSE and cosine are always evaluated in exact float32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


@contextmanager
def matmul_precision(setting: str) -> Iterator[None]:
    """torch's float32 matmul setting ('highest', 'high') for the body, restored on exit."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(setting)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


@contextmanager
def precision_mode(precision: str, device: torch.device) -> Iterator[None]:
    """The float32 matmul mode of `precision` on `device` (bf16 adds autocast inside the step).
    The global setting is restored on exit."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if device.type != "cuda":  # TF32 is a CUDA notion
        yield
        return
    with matmul_precision("highest" if precision == "fp32" else "high"):
        yield


def exact_float32() -> AbstractContextManager:
    """Exact float32 matmuls for the body, whatever the study's precision (near-ties must not flip)."""
    return matmul_precision("highest")

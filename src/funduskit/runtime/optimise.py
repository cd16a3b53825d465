"""Inference-time rewrites of a trained network that keep its answers: the optimisation toolbox.

:func:`optimise_for_inference` applies, uniformly to any funduskit network:

1. ``eval()`` and ``requires_grad_(False)`` (no autograd bookkeeping, even outside inference mode);
2. **batch-norm folding** (:func:`fold_batch_norms`): every batch norm that directly follows a
   convolution is folded into that convolution's weights and bias and removed (its activation,
   e.g. timm's ``BatchNormAct2d`` swish, stays). Exact up to float rounding;
3. **Winograd convolutions** (:func:`use_winograd_convolutions`, CPU float32 only): dense 3x3
   stride-1 convolutions (the vessel U-Net is made of them) run through NNPACK's Winograd
   transform, about 2-3.5x faster than oneDNN's direct convolution on AVX2 CPUs, relative error
   about 1e-5. Those networks are then kept in NCHW (NNPACK's layout);
4. **memory format**: channels_last for the others (EfficientNet's depthwise convolutions);
5. the device of the runtime.

What was measured and *not* kept (see ``docs/performance.md``): ``torch.compile`` (inductor,
freezing) took over two minutes to compile one EfficientNet-B4 on two cores for a 16 % gain;
``torch.jit.trace`` + ``freeze`` + ``optimize_for_inference`` was not faster than the eager
channels_last network; bf16 autocast is only used where the CPU computes bf16 natively
(:func:`funduskit.runtime.device.cpu_has_native_bf16`; emulated bf16 matmuls run at < 1 GFLOP/s).

Example:
    >>> from funduskit.models import create_model
    >>> from funduskit.runtime.device import Runtime
    >>> net = create_model("vessel_generator", base_width=4, depth=2)
    >>> fast = optimise_for_inference(net, Runtime(torch.device("cpu"), "fp32", True, 1))
    >>> fast.optimisations  # doctest: +SKIP
    ['eval', 'fold_bn:4', 'winograd:4', 'nchw']
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from funduskit.runtime.device import Runtime

__all__ = [
    "ActivationOnly",
    "WinogradConv2d",
    "example_input",
    "fold_batch_norms",
    "optimise_for_inference",
    "use_winograd_convolutions",
    "winograd_available",
]

#: Largest output difference (relative to the output's range) accepted after a rewrite; above it
#: the rewrite is undone. Folding is exact up to rounding (~1e-6); Winograd ~1e-5.
REWRITE_TOLERANCE = 1e-3


def winograd_available() -> bool:
    """True when torch was built with NNPACK and it initialises on this CPU."""
    try:
        return bool(torch._nnpack_available())
    except (AttributeError, RuntimeError):  # pragma: no cover - depends on the build
        return False


class ActivationOnly(nn.Module):
    """What remains of a folded ``BatchNormAct2d``: its dropout and activation (identity if none).

    (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, drop: nn.Module | None = None, act: nn.Module | None = None):
        super().__init__()
        self.drop = drop if drop is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.drop(x))


class WinogradConv2d(nn.Conv2d):
    """A dense 3x3 stride-1 ``nn.Conv2d`` computed by NNPACK's Winograd transform on CPU float32.

    Same parameters and state dict as the convolution it replaces; any other case (autocast,
    another dtype or device, autograd) falls back to ``F.conv2d``. Output is NCHW contiguous.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or self.weight.dtype != torch.float32 or (
            torch.is_autocast_enabled("cpu") or (torch.is_grad_enabled() and self.weight.requires_grad)
        ):
            return super().forward(x)
        bias = self.bias if self.bias is not None else torch.zeros(self.out_channels, dtype=x.dtype)
        weight = self.weight.contiguous()  # NNPACK reads NCHW weights; a no-op unless channels_last
        return torch._nnpack_spatial_convolution(x.contiguous(), weight, bias, list(self.padding), [1, 1])


@dataclass
class _Pair:
    conv: str
    norm: str


def example_input(model: nn.Module, batch: int = 1) -> Tensor:
    """A small valid random input (B, C, 2m, 2m) for ``model``, m its ``input_multiple``."""
    channels = int(getattr(model, "in_channels", 3))
    side = 2 * int(getattr(model, "input_multiple", 32))
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, channels, side, side, generator=generator)


def _run_with_hooks(model: nn.Module, x: Tensor, handles: list[torch.utils.hooks.RemovableHandle]) -> None:
    """Run ``x`` through ``model`` without gradients so the hooks behind ``handles`` see every
    layer, then remove the hooks."""
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()


def _conv_norm_pairs(model: nn.Module, x: Tensor) -> list[_Pair]:
    """(convolution, batch norm) module names where the norm's input *is* the convolution's
    output tensor, found by running ``x`` through ``model`` with forward hooks."""
    names = {module: name for name, module in model.named_modules()}
    produced: dict[int, tuple[str, Tensor]] = {}
    pairs: list[_Pair] = []

    def after_conv(module: nn.Module, _inputs: tuple, output: Tensor) -> None:
        produced[id(output)] = (names[module], output)  # keep the tensor alive: ids stay unique

    def before_norm(module: nn.Module, inputs: tuple) -> None:
        found = produced.get(id(inputs[0]))
        if found is not None and found[1] is inputs[0]:
            pairs.append(_Pair(found[0], names[module]))

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(after_conv))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_pre_hook(before_norm))
    _run_with_hooks(model, x, handles)
    conv_uses: dict[str, int] = {}
    for pair in pairs:
        conv_uses[pair.conv] = conv_uses.get(pair.conv, 0) + 1
    return [pair for pair in pairs if conv_uses[pair.conv] == 1]


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    """Fold ``norm`` (eval statistics) into ``conv``'s weight and bias, in place."""
    assert norm.running_mean is not None and norm.running_var is not None
    scale = torch.rsqrt(norm.running_var.double() + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.double()
    shift = -norm.running_mean.double() * scale
    if norm.bias is not None:
        shift = shift + norm.bias.double()
    with torch.no_grad():
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(shift)
        weight = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
        conv.weight.copy_(weight.to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels, dtype=conv.weight.dtype, device=conv.weight.device))
        conv.bias.copy_((bias * scale + shift).to(conv.bias.dtype))


def fold_batch_norms(model: nn.Module, x: Tensor | None = None) -> int:
    """Fold every eval-mode batch norm that directly follows a convolution into it (in place).

    The pairs are found by running ``x`` (default :func:`example_input`) with hooks: a batch
    norm whose input is exactly one convolution's output tensor. The norm is replaced by its
    activation (:class:`ActivationOnly`) or removed. Returns how many were folded.
    """
    model.eval()
    x = example_input(model) if x is None else x
    pairs = _conv_norm_pairs(model, x)
    for pair in pairs:
        conv = model.get_submodule(pair.conv)
        norm = model.get_submodule(pair.norm)
        _fold(conv, norm)  # type: ignore[arg-type]
        _set_module(model, pair.norm, ActivationOnly(getattr(norm, "drop", None), getattr(norm, "act", None)))
    return len(pairs)


def _winograd_candidate(module: nn.Module) -> bool:
    return (
        type(module) is nn.Conv2d
        and module.kernel_size == (3, 3)
        and module.stride == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
        and isinstance(module.padding, tuple)
    )


def use_winograd_convolutions(model: nn.Module) -> int:
    """Turn every dense 3x3 stride-1 ``nn.Conv2d`` into a :class:`WinogradConv2d` (in place).

    Returns how many were turned (0 when NNPACK is unavailable).
    """
    if not winograd_available():
        return 0
    count = 0
    for module in model.modules():
        if _winograd_candidate(module):
            module.__class__ = WinogradConv2d
            count += 1
    return count


def _dense_3x3_share(model: nn.Module, x: Tensor) -> float:
    """Fraction of the convolution multiply-adds of ``model`` on ``x`` spent in Winograd-able
    (dense 3x3 stride-1) convolutions."""
    totals = {"dense": 0.0, "all": 0.0}

    def count(module: nn.Module, _inputs: tuple, output: Tensor) -> None:
        macs = output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        totals["all"] += macs
        if _winograd_candidate(module) or isinstance(module, WinogradConv2d):
            totals["dense"] += macs

    _run_with_hooks(model, x, [module.register_forward_hook(count)
                               for module in model.modules() if isinstance(module, nn.Conv2d)])
    return totals["dense"] / totals["all"] if totals["all"] else 0.0


#: Networks spending at least this share of their convolution work in dense 3x3 convolutions
#: run with Winograd in NCHW; the others (EfficientNets: depthwise + 1x1) in channels_last.
WINOGRAD_SHARE = 0.5


def _max_relative_difference(a: Tensor, b: Tensor) -> float:
    scale = float(a.abs().max()) or 1.0
    return float((a.float() - b.float()).abs().max()) / scale


def optimise_for_inference(
    model: nn.Module,
    runtime: Runtime,
    *,
    fold_bn: bool = True,
    winograd: bool | None = None,
    check: bool = True,
) -> nn.Module:
    """The inference-optimised form of ``model`` on ``runtime``'s device (see the module doc).

    Args:
        model: a funduskit network (left unchanged; a rewritten copy is returned).
        runtime: device, precision and memory-format choice (``runtime.channels_last`` off keeps
            NCHW everywhere and no Winograd: the plain baseline apart from folding).
        fold_bn: fold batch norms into convolutions.
        winograd: NNPACK Winograd for dense 3x3 convolutions; ``None`` decides per network (CPU,
            fp32, NNPACK present, at least half of the convolution work in such layers).
        check: compare the rewritten network's output with the original's on a small input and
            undo the rewrites if they differ by more than :data:`REWRITE_TOLERANCE`.

    Returns:
        The network in eval mode without gradients, with ``optimisations``: a list of what was
        applied, e.g. ``["eval", "fold_bn:95", "channels_last"]``.
    """
    original = model.eval()
    fast = copy.deepcopy(original).requires_grad_(False)
    applied = ["eval"]
    parameter = next(original.parameters(), None)
    x = example_input(fast).to(parameter.device if parameter is not None else "cpu")
    if fold_bn:
        applied.append(f"fold_bn:{fold_batch_norms(fast, x)}")
    cpu_fp32 = runtime.device_type == "cpu" and not runtime.bf16
    if winograd is None:
        winograd = cpu_fp32 and runtime.channels_last and winograd_available() and _dense_3x3_share(fast, x) >= WINOGRAD_SHARE
    if winograd and cpu_fp32:
        applied.append(f"winograd:{use_winograd_convolutions(fast)}")
    if check:
        with torch.no_grad():
            reference, result = original(x), fast(x)
        difference = _max_relative_difference(reference, result)
        if difference > REWRITE_TOLERANCE:
            fast, applied = copy.deepcopy(original).requires_grad_(False), ["eval", f"rewrites undone ({difference:.1e})"]
    channels_last = runtime.channels_last and not any(item.startswith("winograd") for item in applied)
    fast = fast.to(runtime.device)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    applied.append("channels_last" if channels_last else "nchw")
    fast.optimisations = applied  # type: ignore[assignment]
    fast.prefers_channels_last = channels_last  # type: ignore[assignment]
    return fast


def describe(models: Sequence[nn.Module]) -> list[str]:
    """The ``optimisations`` list of each model, joined (``"-"`` when not optimised)."""
    return [", ".join(getattr(model, "optimisations", ["-"])) for model in models]

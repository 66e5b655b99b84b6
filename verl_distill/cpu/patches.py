"""The few changes verl 0.9.1 needs to train on a CPU, applied from plugin code (no edits to verl's files).

Each fix is applied when the module it changes is first imported (a post-import hook), so activating the CPU mode
costs no import time in processes that never load those modules. The fixes (see docs/verl-on-cpu.md):

1. process group: verl asks for ``cpu:gloo,cpu:gloo``, which torch rejects; collapse it to ``gloo``;
2. FSDP engine lookup: verl registers FSDP engines for ``cuda``/``npu`` only; ``VERL_ENGINE_DEVICE=cuda``;
3. FSDP2 CPU offload (reference model): ``CPUOffloadPolicy(pin_memory=True)`` fails on CPU torch; force False;
4. critic: ``load_valuehead_model`` hard-codes flash-attention-2; load a token classifier with ``sdpa``;
5. v1 replay buffer: polls every 2 s; poll every 0.05 s (tiny models finish a rollout in well under a second).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

REPLAY_POLL_INTERVAL_S = 0.05

_HOOKS: dict[str, list[Callable[[Any], None]]] = {}


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Runs registered callbacks right after the named modules finish executing."""

    def find_spec(self, fullname: str, path: Any, target: Any = None):  # noqa: D102
        if fullname not in _HOOKS:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _WrappedLoader(spec.loader, fullname)
                return spec
        return None


class _WrappedLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec):  # noqa: D102
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:  # noqa: D102
        self._loader.exec_module(module)
        for hook in _HOOKS.get(self._name, []):
            hook(module)


_FINDER = _PostImportFinder()


def when_imported(module_name: str, hook: Callable[[Any], None]) -> None:
    """Call ``hook(module)`` now if ``module_name`` is loaded, else right after it is first imported."""
    if module_name in sys.modules:
        hook(sys.modules[module_name])
        return
    _HOOKS.setdefault(module_name, []).append(hook)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def _collapse_backend(backend: Any) -> Any:
    if isinstance(backend, str) and backend and set(backend.replace(",", " ").split()) <= {"cpu:gloo"}:
        return "gloo"
    return backend


def patch_process_group() -> None:
    """Make ``torch.distributed.init_process_group`` accept verl's ``cpu:gloo,cpu:gloo``."""
    import torch.distributed as dist

    original = dist.init_process_group
    if getattr(original, "_verl_distill_cpu", False):
        return

    def init_process_group(backend: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original(_collapse_backend(backend), *args, **kwargs)

    init_process_group._verl_distill_cpu = True  # type: ignore[attr-defined]
    dist.init_process_group = init_process_group


def _no_pin_offload_policy(module: Any) -> None:
    original = getattr(module, "CPUOffloadPolicy", None)
    if original is None or getattr(original, "_verl_distill_cpu", False):
        return

    class CPUOffloadPolicyNoPin(original):  # type: ignore[misc, valid-type]
        """FSDP2 offload policy that never pins memory (pinning needs an accelerator)."""

        _verl_distill_cpu = True

        def __init__(self, pin_memory: bool = False) -> None:
            super().__init__(pin_memory=False)

    module.CPUOffloadPolicy = CPUOffloadPolicyNoPin


def _patch_valuehead(module: Any) -> None:
    original = module.load_valuehead_model
    if getattr(original, "_verl_distill_cpu", False):
        return

    def load_valuehead_model(local_path: str, torch_dtype: Any, model_config: Any, trust_remote_code: bool) -> Any:
        """Critic with a one-label token-classification head, attention ``sdpa`` (no flash-attention on CPU)."""
        from transformers import AutoModelForTokenClassification

        model_config.num_labels = 1
        return AutoModelForTokenClassification.from_pretrained(
            local_path, torch_dtype=torch_dtype, config=model_config, attn_implementation="sdpa",
            trust_remote_code=trust_remote_code,
        )

    load_valuehead_model._verl_distill_cpu = True  # type: ignore[attr-defined]
    module.load_valuehead_model = load_valuehead_model


def _fast_replay_poll(module: Any) -> None:
    for name in ("ReplayBuffer", "ReplayBufferAsync"):
        cls = getattr(module, name, None)
        if cls is None or getattr(cls.__init__, "_verl_distill_cpu", False):
            continue
        original = cls.__init__

        def __init__(self: Any, *args: Any, _orig: Callable = original, **kwargs: Any) -> None:
            _orig(self, *args, **kwargs)
            self.poll_interval = min(self.poll_interval, REPLAY_POLL_INTERVAL_S)

        __init__._verl_distill_cpu = True  # type: ignore[attr-defined]
        cls.__init__ = __init__


def apply_all() -> None:
    """Apply every CPU fix (idempotent). Only called when ``VERL_PLATFORM=cpu``."""
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    patch_process_group()
    when_imported("verl.utils.fsdp_utils", _no_pin_offload_policy)
    when_imported("verl.workers.engine.fsdp.transformer_impl", _no_pin_offload_policy)
    when_imported("verl.utils.model", _patch_valuehead)
    when_imported("verl.trainer.ppo.v1.replay_buffer", _fast_replay_poll)

"""A ``cpu`` platform for verl 0.9.1's platform registry.

verl has no CPU platform: it asks torch for ``cpu:gloo,cuda:nccl`` and counts only GPU Ray resources. This platform
reports device ``cpu`` with the ``gloo`` backend and a stand-in device module whose cache/memory/sync calls are
no-ops. It keeps ``GPU`` as the Ray resource name, because verl's resource check counts only GPU/NPU resources; a CPU
run therefore declares fake GPUs (``+ray_kwargs.ray_init.num_gpus=N``), one per trainer process.

Selected with ``VERL_PLATFORM=cpu``; never auto-detected.
"""

from __future__ import annotations

import logging
import types
from contextlib import contextmanager
from typing import Any, Optional

import torch

logger = logging.getLogger(__name__)


def _noop(*_args: Any, **_kwargs: Any) -> None:
    return None


def _zero(*_args: Any, **_kwargs: Any) -> int:
    return 0


class _CPUDeviceModule(types.ModuleType):
    """A ``torch.cuda``-shaped namespace for the CPU.

    Memory statistics read 0; synchronisation, cache and stream calls do nothing. Names not defined here fall back to
    ``torch.cpu`` and then to a logged no-op, so a verl code path that touches an unusual ``torch.cuda`` function on a
    CPU run degrades to a no-op instead of crashing the step.
    """

    def __getattr__(self, name: str) -> Any:
        if hasattr(torch.cpu, name):
            return getattr(torch.cpu, name)
        logger.debug("cpu device module: %s() is a no-op", name)
        return _noop


def _make_device_module() -> types.ModuleType:
    mod = _CPUDeviceModule("verl_distill_cpu_device")
    mod.is_available = lambda: True
    mod.current_device = lambda: "cpu"
    mod.device_count = lambda: 1
    mod.get_device_name = lambda *_a, **_k: "cpu"
    mod.set_device = _noop
    mod.synchronize = _noop
    mod.empty_cache = _noop
    mod.ipc_collect = _noop
    mod.set_per_process_memory_fraction = _noop
    mod.manual_seed = torch.manual_seed
    mod.manual_seed_all = torch.manual_seed
    mod.get_rng_state = lambda *_a, **_k: torch.get_rng_state()
    mod.set_rng_state = lambda state, *_a, **_k: torch.set_rng_state(state)
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"):
        setattr(mod, name, _zero)
    mod.reset_peak_memory_stats = _noop
    mod.reset_max_memory_allocated = _noop
    mod.mem_get_info = lambda *_a, **_k: (0, 0)
    mod.memory_stats = lambda *_a, **_k: {}
    mod.is_initialized = lambda: True
    return mod


_DEVICE_MODULE = _make_device_module()


def make_platform_class() -> type:
    """Build the platform class against verl's ``PlatformBase`` (imported lazily: verl may still be importing)."""
    from verl.plugin.platform.platform_base import PlatformBase

    class PlatformCPU(PlatformBase):
        """verl platform for CPU-only machines (development and CI)."""

        device_name = "cpu"
        vendor_name = "cpu"

        @property
        def device_module(self) -> types.ModuleType:
            return _DEVICE_MODULE

        def is_available(self) -> bool:
            return True

        def is_platform_available(self, use_smi_check: bool = False) -> bool:
            return False  # never auto-detected: only VERL_PLATFORM=cpu selects it

        def current_device(self) -> str:  # type: ignore[override]
            return "cpu"

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            return None

        def synchronize(self, device_index: Optional[int] = None) -> None:
            return None

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            return None

        def empty_cache(self) -> None:
            return None

        def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def visible_devices_envvar(self) -> str:
            return "CUDA_VISIBLE_DEVICES"

        @contextmanager
        def nvtx_range(self, msg: str):
            yield

        def profiler_start(self) -> None:
            return None

        def profiler_stop(self) -> None:
            return None

        def ray_resource_name(self) -> str:
            return "GPU"

        def ray_noset_envvars(self) -> list[str]:
            return []

        def is_ipc_supported(self) -> bool:
            return False

        def cudart(self) -> Any:
            return None

    # the abstract properties must be overridden by properties, not plain attributes
    PlatformCPU.device_name = property(lambda self: "cpu")
    PlatformCPU.vendor_name = property(lambda self: "cpu")
    PlatformCPU.__abstractmethods__ = frozenset()
    return PlatformCPU


def register_platform() -> type:
    """Register the platform as ``cpu`` with verl's ``PlatformRegistry``; returns the class."""
    from verl.plugin.platform.platform_manager import PlatformRegistry

    cls = make_platform_class()
    PlatformRegistry.register(platform="cpu")(cls)
    logger.debug("registered verl platform 'cpu'")
    return cls

"""CPU mode for verl 0.9.1: a ``cpu`` platform, the fixes verl needs on CPU, and an ``hf`` rollout backend.

Activated only by ``VERL_PLATFORM=cpu`` (our CPU recipes set it); on GPU machines nothing here runs.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

HF_ADAPTER = "verl_distill.cpu.hf_rollout.HFServerAdapter"
_ACTIVE = False


def _load_hf_replica() -> type:
    from verl_distill.cpu.hf_rollout import HFReplica

    return HFReplica


def _register_replica(module) -> None:
    module.RolloutReplicaRegistry.register("hf", _load_hf_replica)


def _register_adapter(module) -> None:
    module._ROLLOUT_REGISTRY[("hf", "async")] = HF_ADAPTER


def cpu_mode_requested() -> bool:
    """True when this process was asked to run verl on the CPU (``VERL_PLATFORM=cpu``)."""
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


def activate() -> None:
    """Register the platform and the ``hf`` rollout, and apply the CPU fixes (idempotent)."""
    global _ACTIVE
    if _ACTIVE:
        return
    from verl_distill.cpu import patches
    from verl_distill.cpu.platform import register_platform

    register_platform()
    patches.apply_all()
    patches.when_imported("verl.workers.rollout.replica", _register_replica)
    patches.when_imported("verl.workers.rollout.base", _register_adapter)
    _ACTIVE = True
    logger.debug("verl-distill CPU mode active (pid %d)", os.getpid())

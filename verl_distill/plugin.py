"""verl plugin entry point (``verl.plugins`` group): imported by every ``import verl``, driver and Ray workers.

It activates the CPU mode when ``VERL_PLATFORM=cpu`` and does nothing otherwise. verl swallows plugin import errors
(logged at DEBUG), so a failure here is logged at ERROR and re-raised: a broken CPU mode must not look like a
missing one.
"""

from __future__ import annotations

import logging

from verl_distill import cpu

logger = logging.getLogger("verl_distill.plugin")

if cpu.cpu_mode_requested():
    try:
        cpu.activate()
    except Exception:
        logger.exception("verl-distill: VERL_PLATFORM=cpu was requested but the CPU mode failed to activate")
        raise

"""The verl plugin: registered through the ``verl.plugins`` entry point, active only with VERL_PLATFORM=cpu, loud on
failure, and the CPU fixes it applies. Each check runs in a fresh interpreter, as verl's driver and workers do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True,
                          text=True, timeout=180)


def test_entry_point_is_registered():
    names = {ep.name: ep.value for ep in entry_points(group="verl.plugins")}
    assert names.get("verl_distill") == "verl_distill.plugin"


def test_inactive_without_cpu_platform():
    proc = run_python("""
        import os, verl
        from verl.plugin.platform.platform_manager import PlatformRegistry
        from verl.workers.rollout.base import _ROLLOUT_REGISTRY
        print("cpu" in PlatformRegistry.registered_names(), ("hf", "async") in _ROLLOUT_REGISTRY,
              os.environ.get("VERL_ENGINE_DEVICE"))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False", "None"]


def test_active_with_cpu_platform():
    proc = run_python("""
        import torch.distributed as dist
        import verl
        from verl.plugin.platform import get_platform
        from verl.workers.rollout.replica import RolloutReplicaRegistry
        from verl.workers.rollout.base import get_rollout_class
        from verl.utils import fsdp_utils
        import verl.utils.model as vmodel
        p = get_platform()
        print(p.device_name, p.communication_backend_name(), p.ray_resource_name())
        print(RolloutReplicaRegistry.get("hf").__name__, get_rollout_class("hf", "async").__name__)
        print(fsdp_utils.CPUOffloadPolicy(pin_memory=True).pin_memory)
        print(getattr(vmodel.load_valuehead_model, "_verl_distill_cpu", False))
    """, VERL_PLATFORM="cpu")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["cpu", "gloo", "GPU"]
    assert lines[1].split() == ["HFReplica", "HFServerAdapter"]
    assert lines[2:] == ["False", "True"]


def test_process_group_accepts_verls_cpu_backend(tmp_path):
    """verl asks torch for 'cpu:gloo,cpu:gloo' on this platform; torch alone rejects it."""

    def code(with_plugin: bool, name: str) -> str:
        return f"""
            import torch.distributed as dist
            {"import verl" if with_plugin else ""}
            dist.init_process_group(backend="cpu:gloo,cpu:gloo", init_method="file://{tmp_path}/{name}",
                                    rank=0, world_size=1)
            print(dist.get_backend())
        """

    proc = run_python(code(True, "a"), VERL_PLATFORM="cpu")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gloo"
    unpatched = run_python(code(False, "b"))
    assert unpatched.returncode != 0 and "Duplicate device type" in unpatched.stderr


def test_broken_activation_is_logged_as_error():
    """verl swallows plugin import errors at DEBUG; ours must say so at ERROR."""
    proc = run_python("""
        import sys
        sys.modules["verl_distill.cpu.platform"] = None  # simulate a broken install
        import verl
    """, VERL_PLATFORM="cpu")
    assert "ERROR" in proc.stderr and "VERL_PLATFORM=cpu was requested" in proc.stderr, proc.stderr[-2000:]

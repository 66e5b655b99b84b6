"""An ``hf`` rollout backend for verl 0.9.1: batched Hugging Face generation in a Ray actor.

verl's trainer generates only through server replicas (the agent loop awaits ``server.generate.remote``) and pushes
new weights through a rollout adapter living in each actor worker. This module provides the three pieces:

* :class:`HFRolloutServer` — a Ray actor holding a ``transformers`` causal LM. Concurrent ``generate`` requests
  with equal sampling parameters are gathered into one left-padded ``model.generate`` call. It returns the sampled
  tokens and their log-probs under the processed (temperature/top-k/top-p) distribution, as vLLM's
  ``processed_logprobs`` does, so verl's rollout/actor log-prob comparison is meaningful.
* :class:`HFReplica` — the ``RolloutReplica`` that launches one server actor per replica (``num_cpus=0``).
* :class:`HFServerAdapter` — the ``BaseRollout`` adapter in the actor worker: ``update_weights`` consumes the weight
  iterator on every rank (FSDP all-gathers while iterating) and the replica's leader rank sends the state dict to its
  server, every step.

It is slow next to vLLM and meant for tiny models on CPU (development and CI), not for GPU training.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

logger = logging.getLogger(__name__)

BATCH_WINDOW_S = 0.01  # how long the server waits for more concurrent requests before generating


@dataclass
class _Request:
    prompt_ids: list[int]
    max_tokens: int
    future: asyncio.Future = field(repr=False)


def _sampling_key(params: dict[str, Any]) -> tuple:
    temperature = float(params.get("temperature", 1.0) or 0.0)
    top_p = float(params.get("top_p", 1.0) or 1.0)
    top_k = int(params.get("top_k", -1) or -1)
    return (temperature, top_p, top_k)


def _server_name(replica_rank: int) -> str:
    return f"hf_server_{replica_rank}_0"


class HFRolloutServer:
    """Token-in/token-out generation server for one replica (a Ray actor)."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int) -> None:
        from transformers import AutoModelForCausalLM
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig

        self.config = omega_conf_to_dataclass(config)
        self.model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.replica_rank = replica_rank
        self.global_steps: Optional[int] = None
        torch.set_num_threads(int(os.environ.get("VERL_DISTILL_ROLLOUT_THREADS", os.cpu_count() or 1)))
        torch.manual_seed(int(getattr(self.config, "seed", 0) or 0) + replica_rank)
        path = self.model_config.local_path
        self.model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="sdpa")
        self.model.eval()
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.model.config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.pad_id = gen.pad_token_id if gen.pad_token_id is not None else min(self.eos_ids)
        self._pending: dict[tuple, list[_Request]] = {}
        self._lock = asyncio.Lock()
        logger.info("hf rollout server %d ready (%s)", replica_rank, path)

    def _max_tokens(self, prompt_len: int, params: dict[str, Any]) -> int:
        cfg = self.config
        limit = params.get("max_tokens", params.get("max_new_tokens"))
        if limit is None:
            limit = min(cfg.response_length, cfg.prompt_length + cfg.response_length - prompt_len)
        return max(1, int(limit))

    async def generate(self, request_id: str, prompt_ids: list[int], sampling_params: dict[str, Any],
                       image_data: Any = None, video_data: Any = None, **_kwargs: Any):
        """Generate one response; concurrent requests with the same sampling parameters share a batch."""
        from verl.workers.rollout.replica import TokenOutput

        params = dict(sampling_params)
        key = _sampling_key(params)
        future = asyncio.get_running_loop().create_future()
        request = _Request(list(map(int, prompt_ids)), self._max_tokens(len(prompt_ids), params), future)
        self._pending.setdefault(key, []).append(request)
        if len(self._pending[key]) == 1:
            asyncio.get_running_loop().create_task(self._flush(key))
        token_ids, log_probs = await future
        return TokenOutput(token_ids=token_ids, log_probs=log_probs, stop_reason="completed",
                           extra_fields={"global_steps": self.global_steps})

    async def _flush(self, key: tuple) -> None:
        await asyncio.sleep(BATCH_WINDOW_S)
        async with self._lock:  # one generate at a time: weights may be swapped between batches
            batch = self._pending.pop(key, [])
            if not batch:
                return
            try:
                results = await asyncio.to_thread(self._generate_batch, batch, key)
            except BaseException as err:  # surface the failure to every waiting request
                for req in batch:
                    if not req.future.done():
                        req.future.set_exception(err)
                raise
            for req, result in zip(batch, results, strict=True):
                req.future.set_result(result)

    @torch.no_grad()
    def _generate_batch(self, batch: list[_Request], key: tuple) -> list[tuple[list[int], list[float]]]:
        temperature, top_p, top_k = key
        width = max(len(r.prompt_ids) for r in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, req in enumerate(batch):  # left padding
            input_ids[i, width - len(req.prompt_ids):] = torch.tensor(req.prompt_ids)
            attention[i, width - len(req.prompt_ids):] = 1
        sample = temperature > 0
        kwargs: dict[str, Any] = dict(do_sample=sample, max_new_tokens=max(r.max_tokens for r in batch),
                                      eos_token_id=sorted(self.eos_ids), pad_token_id=self.pad_id,
                                      output_scores=True, return_dict_in_generate=True)
        if sample:
            kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k if top_k > 0 else 0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        new_tokens = out.sequences[:, width:]
        scores = torch.stack(out.scores, dim=1).float()  # processed logits, [batch, steps, vocab]
        logprobs = torch.log_softmax(scores, dim=-1).gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
        return [self._trim(new_tokens[i], logprobs[i], req.max_tokens) for i, req in enumerate(batch)]

    def _trim(self, tokens: torch.Tensor, logprobs: torch.Tensor, max_tokens: int) -> tuple[list[int], list[float]]:
        ids = tokens.tolist()[:max_tokens]
        for pos, tok in enumerate(ids):
            if tok in self.eos_ids:
                ids = ids[: pos + 1]  # keep EOS, as vLLM does, so the policy learns to stop
                break
        return ids, logprobs[: len(ids)].tolist()

    async def update_weights(self, state_dict: dict[str, torch.Tensor], global_steps: Optional[int] = None) -> None:
        """Load new policy weights (called by the leader rank's adapter after every training step)."""
        async with self._lock:
            missing, unexpected = self.model.load_state_dict(state_dict, strict=False)
            real_missing = [k for k in missing if "lm_head" not in k or not self.model.config.tie_word_embeddings]
            if real_missing or unexpected:
                raise RuntimeError(f"hf rollout: weight names do not match the model: missing={real_missing[:5]} "
                                   f"unexpected={unexpected[:5]}")
            if self.model.config.tie_word_embeddings:
                self.model.tie_weights()
        if global_steps is not None:
            self.global_steps = global_steps

    async def set_global_steps(self, global_steps: int) -> None:
        """Record the step the current weights belong to."""
        self.global_steps = global_steps

    async def abort_all_requests(self, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
        """Nothing is ever partially generated here; report no aborted requests."""
        return {"aborted_count": 0, "request_ids": []}

    async def get_stats(self) -> dict[str, Any]:
        """Server statistics (none are kept)."""
        return {}

    async def _noop(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    # KV cache / memory / profiling controls have no meaning for in-memory HF generation.
    wake_up = sleep = clear_kv_cache = release_kv_cache = resume_kv_cache = _noop
    resume_generation = resume_engine_generation = open_submission_gate = _noop
    wait_for_requests_to_drain = start_profile = stop_profile = _noop


def _replica_base():
    from verl.workers.rollout.replica import RolloutReplica

    return RolloutReplica


class HFReplica(_replica_base()):
    """One HF generation server per replica, started in the actor's node with no CPU reservation."""

    def rollout_worker_use_gpu(self) -> bool:
        return False

    async def launch_servers(self) -> None:
        import ray

        server_cls = ray.remote(HFRolloutServer)
        server = server_cls.options(name=_server_name(self.replica_rank), num_cpus=0,
                                    max_concurrency=self.max_concurrency).remote(
            config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        await server.get_stats.remote()  # wait until the model is loaded
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf-rollout-replica-{self.replica_rank}"


def _base_rollout():
    from verl.workers.rollout.base import BaseRollout

    return BaseRollout


class HFServerAdapter(_base_rollout()):
    """Rollout adapter in each actor worker: forwards new weights to the replica's HF server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1) -> None:
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", 0))
        world = (self.config.tensor_model_parallel_size * self.config.data_parallel_size
                 * self.config.pipeline_model_parallel_size)
        self.replica_rank = rank // world if replica_rank == -1 else replica_rank
        self.is_leader = rank % world == 0
        self._server = None

    def _server_handle(self):
        import ray

        if self._server is None:
            self._server = ray.get_actor(_server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        """Weights and KV cache stay in memory: nothing to resume."""

    async def release(self) -> None:
        """Nothing to release on CPU."""

    async def update_weights(self, weights: Any, global_steps: Optional[int] = None,
                             wire_format: str = "named_tensors", **_kwargs: Any) -> None:
        """Consume the full weight iterator on every rank; the leader ships the state dict to its server."""
        if wire_format != "named_tensors":
            raise ValueError(f"hf rollout supports wire_format='named_tensors' only, got {wire_format!r}")
        from verl.workers.rollout.utils import ensure_async_iterator

        state_dict: dict[str, torch.Tensor] = {}
        async for name, tensor in ensure_async_iterator(weights):
            if hasattr(tensor, "full_tensor"):
                tensor = tensor.full_tensor()
            if self.is_leader:
                state_dict[name] = tensor.detach().to("cpu", copy=True)
        if self.is_leader:
            await self._server_handle().update_weights.remote(state_dict, global_steps)

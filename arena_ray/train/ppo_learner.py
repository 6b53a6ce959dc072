"""The policy learner: the trained policy, its frozen reference and the optimiser, in one process (a Ray actor
in `arena-ray ppo`). Clipped policy-gradient loss with a KL penalty to the reference (k3 estimator, added to the
loss as in GRPO), on rollouts whose token ids came from the serving engine.

Rollouts produced by another weight version than the learner's are stale: they are dropped and counted.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch

from arena_ray.errors import TrainingError
from arena_ray.records.rl import Rollout, StepStats


def _batch(rollouts: list[Rollout], pad_id: int, device):
    """Right-padded prompt+completion ids, the attention mask, and a mask of the completion tokens."""
    seqs = [list(r.prompt_token_ids) + list(r.token_ids) for r in rollouts]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    completion = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, (r, s) in enumerate(zip(rollouts, seqs)):
        ids[i, :len(s)] = torch.tensor(s)
        attention[i, :len(s)] = 1
        completion[i, len(r.prompt_token_ids):len(s)] = True
    return ids.to(device), attention.to(device), completion.to(device)


def token_logprobs(model, ids, attention) -> torch.Tensor:
    """log p(token_t | tokens_<t) for t >= 1, aligned to ids[:, 1:]."""
    logits = model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
    return torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def policy_loss(logp, old_logp, ref_logp, advantages, mask, clip_eps: float, kl_coef: float):
    """Per-sequence mean over completion tokens, then the batch mean (GRPO's normalisation)."""
    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None]
    pg = -torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv)
    log_ratio_ref = ref_logp - logp
    kl = torch.exp(log_ratio_ref) - log_ratio_ref - 1   # k3: unbiased, non-negative
    per_token = pg + kl_coef * kl
    m = mask.float()
    n = m.sum(-1).clamp(min=1)
    loss = ((per_token * m).sum(-1) / n).mean()
    clipped = ((ratio - 1).abs() > clip_eps).float()
    pg, kl = pg.detach(), kl.detach()
    return loss, {"policy_loss": float(((pg * m).sum(-1) / n).mean()), "kl": float(((kl * m).sum(-1) / n).mean()),
                  "clip_fraction": float((clipped * m).sum() / m.sum().clamp(min=1))}


class PolicyLearner:
    def __init__(self, policy_path: str, settings: dict, use_gpu: bool = False, push_to: Optional[dict] = None):
        """push_to: with weight_sync nccl or ipc, the served policy the weights go to — {"model": its Serve
        application, "replicas": ..., "tensor_parallel_size": ...} (train/weight_push.py)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from arena_ray.settings.ppo import PPORecipe

        # The recipe's own keys: `arena-ray ppo` passes its whole section, the flywheel's stage its recipe.
        self.s = PPORecipe.model_validate({k: v for k, v in settings.items() if k in PPORecipe.model_fields})
        torch.manual_seed(self.s.seed)
        self.device = torch.device("cuda" if use_gpu else "cpu")
        dtype = torch.bfloat16 if use_gpu else torch.float32
        self.policy = AutoModelForCausalLM.from_pretrained(policy_path, dtype=dtype).to(self.device)
        self.ref = AutoModelForCausalLM.from_pretrained(policy_path, dtype=dtype).to(self.device).eval()
        self.ref.requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(policy_path)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else \
            self.tokenizer.eos_token_id
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=self.s.learning_rate,
                                           weight_decay=self.s.weight_decay)
        self.version = 0
        self.push_to, self.pusher = push_to, None

    def _logps(self, model, chunk: list[Rollout]):
        ids, attention, completion = _batch(chunk, self.pad_id, self.device)
        return token_logprobs(model, ids, attention), completion[:, 1:]

    def step(self, step: int, rollouts: list[Rollout]) -> StepStats:
        fresh = [r for r in rollouts if r.weight_version == self.version and r.token_ids]
        stale = len(rollouts) - len(fresh)
        if not fresh:
            raise TrainingError(f"step {step}: no fresh rollouts ({stale} stale) — the serving replicas did not answer "
                             f"with weight version {self.version}")
        mb = self.s.micro_batch_size
        chunks = [fresh[i:i + mb] for i in range(0, len(fresh), mb)]
        with torch.no_grad():
            old = [self._logps(self.policy, c) for c in chunks]
            ref = [self._logps(self.ref, c)[0] for c in chunks]
        gap = sampler_gap(chunks, old)
        totals = {"loss": 0.0, "policy_loss": 0.0, "kl": 0.0, "clip_fraction": 0.0}
        grad_norm, updates = 0.0, 0
        self.policy.train()
        for _ in range(self.s.ppo_epochs):
            for chunk, (old_logp, mask), ref_logp in zip(chunks, old, ref):
                logp, _ = self._logps(self.policy, chunk)
                adv = torch.tensor([r.advantage for r in chunk], dtype=logp.dtype, device=self.device)
                loss, parts = policy_loss(logp, old_logp, ref_logp, adv, mask, self.s.clip_eps, self.s.kl_coef)
                self.optimizer.zero_grad()
                loss.backward()
                grad_norm += float(torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.s.max_grad_norm))
                self.optimizer.step()
                updates += 1
                totals["loss"] += float(loss)
                for k, v in parts.items():
                    totals[k] += v
        self.policy.eval()
        self.version += 1
        return StepStats(step=step, version=self.version, rollouts=len(fresh), stale_dropped=stale,
                         grad_norm=grad_norm / updates, sampler_logprob_gap=gap,
                         **{k: v / updates for k, v in totals.items()})

    def logprobs(self, rollouts: list[Rollout]) -> list[list[float]]:
        """The learner's logprobs of each rollout's completion tokens (for checks against the sampler)."""
        with torch.no_grad():
            logp, mask = self._logps(self.policy, rollouts)
        return [logp[i][mask[i]].tolist() for i in range(len(rollouts))]

    def publish(self) -> tuple[int, list]:
        """(version, [ObjectRef]) for the WeightStore. object_store: the current weights as safetensors bytes.
        nccl / ipc: the weights go straight into every replica's vLLM (vLLM's weight-transfer API), and the
        reference is a receipt, once every replica has reported this version."""
        import ray

        if self.s.weight_sync == "object_store":
            from arena_ray.serving.weights import pack_state

            return self.version, [ray.put(pack_state(self.policy.state_dict()))]
        from arena_ray.serving.weight_plan import receipt

        if self.pusher is None:  # the group forms at the first push: the replicas are up by then
            from arena_ray.train.weight_push import connect

            if not self.push_to:
                raise TrainingError(f"weight_sync '{self.s.weight_sync}' needs the served policy (push_to)")
            self.pusher = connect(self.s.weight_sync, self.policy, **self.push_to)
        loaded = self.pusher.push(self.version)
        return self.version, [ray.put(receipt(self.s.weight_sync, self.version, loaded))]

    def save(self, path: str) -> str:
        out = Path(path)
        self.policy.save_pretrained(str(out), safe_serialization=True)
        self.tokenizer.save_pretrained(str(out))
        return str(out)

    def restore(self, path: str, version: int) -> None:
        """Resume: the policy's weights from a checkpoint (the reference stays the step-0 policy)."""
        from safetensors.torch import load_file

        from arena_ray.train.registry import weight_files

        state = {}
        for f in weight_files(Path(path)):
            state.update(load_file(str(f)))
        self.policy.load_state_dict(state, strict=False)
        self.version = version


def sampler_gap(chunks, old) -> Optional[float]:
    diffs = []
    for chunk, (logp, mask) in zip(chunks, old):
        for i, r in enumerate(chunk):
            if r.token_logprobs:
                ours = logp[i][mask[i]].tolist()
                diffs.extend(abs(a - b) for a, b in zip(ours, r.token_logprobs) if math.isfinite(b))
    return sum(diffs) / len(diffs) if diffs else None

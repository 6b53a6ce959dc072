"""The `ppo:` section: RL on the policy with rollouts from its own serving deployment (or OpenRLHF on GPUs)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.settings.base import Strict
from arena_ray.settings.data import InstructionsConfig


class RLPromptsConfig(InstructionsConfig):
    path: str = "../shared/data/instructions/alpaca_tiny.json"
    """Prompt file (JSONL, JSON array or Parquet)."""


class RewardConfig(Strict):
    source: Literal["rm", "judge", "pairwise"] = "judge"
    """rm: a reward model (HF sequence-classification folder, e.g. the flywheel's rm stage) scores each answer;
    judge: the config's judge scores each answer with a single-answer rubric (0-5, divided by 5); pairwise: the
    config's judge compares each answer with a reference answer to the same prompt under its pairwise template,
    in both orders (Arena Learning's judge as the reward): mean of (policy score - reference score) / 9, in
    [-1, 1]."""
    rm_path: Optional[str] = None
    """The reward model's folder (source: rm; the flywheel fills in its iteration's reward model)."""
    reference_answers: Optional[str] = None
    """Recorded answers the policy is judged against (source: pairwise; arena-hard, FastChat or
    `question_id, text` JSONL); prompts without one stay unrewarded. The flywheel fills in the strongest
    competitor's answers from the stage's battles."""
    rm_max_length: int = Field(1024, ge=16)
    """Tokens the reward model reads (prompt + answer)."""
    judge_prompt: str = "rubric-additive-v1"
    """Rubric template (source: judge)."""
    judge_max_tokens: int = Field(256, ge=8)
    """New tokens per judgment."""
    judge_temperature: float = Field(0.0, ge=0)
    """Temperature of the first judgment attempt (re-asks sample at 0.7)."""
    judge_max_attempts: int = Field(3, ge=1)
    """Judgments asked per answer before it stays unrewarded."""
    constrain_format: bool = True
    """Hold judgments to the rubric's output format (vLLM structured outputs)."""


class OpenRLHFConfig(Strict):
    """`backend: openrlhf` hands the job to OpenRLHF's Ray PPO (`python -m openrlhf.cli.train_ppo_ray`, release
    0.11.2). Our advantages are critic-free, so no critic group is placed."""

    actor_num_nodes: int = Field(1, ge=1)
    """Nodes of the actor."""
    actor_num_gpus_per_node: int = Field(8, ge=1)
    """GPUs per actor node."""
    ref_num_nodes: int = Field(1, ge=1)
    """Nodes of the reference model."""
    ref_num_gpus_per_node: int = Field(8, ge=1)
    """GPUs per reference node."""
    reward_num_nodes: int = Field(1, ge=1)
    """Nodes of the reward model (reward.source: rm)."""
    reward_num_gpus_per_node: int = Field(8, ge=1)
    """GPUs per reward-model node (reward.source: rm)."""
    vllm_num_engines: int = Field(4, ge=1)
    """vLLM rollout engines."""
    vllm_tensor_parallel_size: int = Field(2, ge=1)
    """GPUs per vLLM engine."""
    vllm_gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    """Share of a GPU each vLLM engine takes."""
    colocate_all_models: bool = True
    """Actor, reference, critic and engines share GPUs."""
    zero_stage: int = Field(3, ge=0, le=3)
    """DeepSpeed ZeRO stage."""
    bf16: bool = True
    """bfloat16 training."""
    gradient_checkpointing: bool = True
    """Recompute activations in the backward pass."""
    packing_samples: bool = True
    """Pack samples into full sequences."""
    micro_train_batch_size: int = Field(4, ge=1)
    """Examples per GPU and micro-step."""
    train_batch_size: int = Field(128, ge=1)
    """Examples per optimiser step."""
    micro_rollout_batch_size: int = Field(8, ge=1)
    """Prompts per GPU and rollout micro-batch."""
    prompt_max_len: int = Field(1024, ge=16)
    """Tokens of a prompt."""
    vllm_sync_backend: Literal["nccl", "gloo"] = "nccl"
    """How new weights reach the vLLM engines after each update (NCCL broadcast on GPUs)."""
    vllm_enable_sleep: bool = False
    """Put the vLLM engines to sleep while the actor trains (with colocate_all_models: frees their memory)."""
    remote_rm_url: Optional[str] = None
    """An existing remote reward endpoint; null with reward.source judge: arena_ray's reward endpoint on Serve."""
    python: Optional[str] = None
    """The Python that has OpenRLHF installed (it pins its own ray/transformers/vllm: keep it in its own venv or
    image); null: this interpreter."""
    dry_run: bool = False
    """Write the command (and the prompt file) but do not run it."""
    extra_args: tuple[str, ...] = ()
    """Further arguments appended to the OpenRLHF command."""


class PPORecipe(Strict):
    """The learner's and the rollouts' settings: `arena-ray ppo` and the flywheel's ppo stage share them."""

    steps: int = Field(4, ge=1)
    """Policy updates."""
    prompts_per_step: int = Field(4, ge=1)
    """Prompts per step."""
    samples_per_prompt: int = Field(4, ge=1)
    """Rollouts per prompt (the group of the advantage)."""
    advantage: Literal["grpo", "rloo", "reinforce"] = "grpo"
    """Critic-free advantages over each prompt's group: grpo (z-score), rloo (leave-one-out mean), reinforce
    (reward minus the batch mean)."""
    temperature: float = Field(1.0, ge=0)
    """Rollout sampling temperature."""
    top_p: float = Field(1.0, gt=0, le=1)
    """Rollout nucleus sampling."""
    max_new_tokens: int = Field(64, ge=1)
    """New tokens per rollout."""
    learning_rate: float = Field(1e-6, gt=0)
    """Learner learning rate."""
    weight_decay: float = Field(0.0, ge=0)
    """Learner weight decay."""
    ppo_epochs: int = Field(1, ge=1)
    """Passes over each step's rollouts."""
    clip_eps: float = Field(0.2, gt=0)
    """PPO ratio clipping."""
    kl_coef: float = Field(0.01, ge=0)
    """KL penalty to the frozen reference (the step-0 policy), k3 estimator, added to the loss."""
    micro_batch_size: int = Field(4, ge=1)
    """Rollouts per learner micro-batch."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradient clipping."""
    seed: int = 0
    """Seed of sampling and the learner."""
    save_every: int = Field(1, ge=1)
    """Checkpoint the policy (safetensors) every this many steps; a re-run resumes from the last one."""
    use_gpu: bool = False
    """The learner takes a GPU."""
    weight_sync: Literal["object_store", "nccl", "ipc"] = "object_store"
    """How each step's weights reach the policy's replicas. object_store: safetensors bytes through the Ray
    object store, loaded in place (CPU or GPU); nccl: broadcast from the learner's GPU into every replica's vLLM
    (vLLM's weight-transfer API; the learner takes a GPU of its own); ipc: CUDA IPC handles, the learner and
    the policy's single replica sharing one GPU (models.<policy>.num_gpus below 1). Both need use_gpu and a
    vLLM policy on GPUs."""
    learner_cpus: float = Field(1, gt=0)
    """CPUs the learner reserves."""
    max_in_flight: int = Field(16, ge=1)
    """Rollout requests in flight."""
    request_timeout_s: float = Field(300.0, gt=0)
    """A rollout request without an answer after this long is a failed request (retried)."""
    max_attempts: int = Field(3, ge=1)
    """Rollout attempts before a rollout is given up."""
    reward: RewardConfig = Field(default_factory=RewardConfig)
    """Where rewards come from."""

    @model_validator(mode="after")
    def _groups(self) -> "PPORecipe":
        if self.advantage in ("grpo", "rloo") and self.samples_per_prompt < 2:
            raise ValueError(f"advantage '{self.advantage}' needs samples_per_prompt >= 2")
        return self

    @model_validator(mode="after")
    def _push_from_gpu(self) -> "PPORecipe":
        # The policy's own side (a vLLM engine on GPUs; for ipc one replica on the learner's GPU) is checked
        # where the models are known (serving/weight_plan.problems, before the cluster starts).
        if self.weight_sync != "object_store" and not self.use_gpu:
            raise ValueError(f"weight_sync '{self.weight_sync}' needs use_gpu: true (the learner sends from GPU "
                             "memory into the policy's vLLM on GPUs); on CPU use 'object_store'")
        return self


class PPOConfig(PPORecipe):
    dir: str = "runs/ppo"
    """Directory of the run (rollouts, steps, checkpoints, model, summary)."""
    policy: str
    """The policy: a vllm entry of `models`; its serving deployment produces the rollouts."""
    backend: Literal["native", "openrlhf"] = "native"
    """native: the learner here with rollouts from Serve; openrlhf: OpenRLHF's Ray PPO on a GPU cluster."""
    prompts: RLPromptsConfig = Field(default_factory=RLPromptsConfig)
    """Prompts, cycled over the steps."""
    openrlhf: OpenRLHFConfig = Field(default_factory=OpenRLHFConfig)
    """The OpenRLHF hand-off (backend: openrlhf)."""

    @model_validator(mode="after")
    def _reward_inputs(self) -> "PPOConfig":
        r = self.reward
        if r.source == "rm" and not r.rm_path:
            raise ValueError("reward.source 'rm' needs reward.rm_path")
        if r.source == "pairwise" and not r.reference_answers:
            raise ValueError("reward.source 'pairwise' needs reward.reference_answers")
        if r.source == "pairwise" and self.backend == "openrlhf":
            raise ValueError("reward.source 'pairwise' is native only (OpenRLHF's remote reward sees one answer)")
        return self

    @model_validator(mode="after")
    def _native_only(self) -> "PPOConfig":
        """Settings of the native learner that OpenRLHF has no counterpart for are refused by name, rather
        than silently ignored, when the job is handed to OpenRLHF."""
        if self.backend != "openrlhf":
            return self
        unmapped = sorted(NATIVE_ONLY & self.model_fields_set)
        unmapped += [f"reward.{k}" for k in sorted(NATIVE_ONLY_REWARD & self.reward.model_fields_set)]
        if unmapped:
            raise ValueError(f"backend 'openrlhf' has no counterpart for {', '.join(unmapped)} (OpenRLHF places "
                             "and batches by ppo.openrlhf.*; its sequence limit is openrlhf.prompt_max_len + "
                             "max_new_tokens): remove them")
        o = self.openrlhf  # OpenRLHF asserts this at start, after the cluster is up: say it at load instead
        batches, actors = self.samples_per_prompt * self.prompts_per_step // o.micro_rollout_batch_size, \
            o.actor_num_nodes * o.actor_num_gpus_per_node
        if batches < actors:
            raise ValueError(f"OpenRLHF needs a rollout micro-batch per actor GPU: samples_per_prompt x "
                             f"prompts_per_step // openrlhf.micro_rollout_batch_size = {batches} < {actors} actor GPUs")
        return self


# The native learner's own knobs: OpenRLHF places, batches and retries by its own settings (ppo.openrlhf.*).
NATIVE_ONLY = frozenset({"use_gpu", "learner_cpus", "max_in_flight", "max_attempts", "micro_batch_size",
                         "weight_sync"})  # OpenRLHF's own: openrlhf.vllm_sync_backend
NATIVE_ONLY_REWARD = frozenset({"rm_max_length"})

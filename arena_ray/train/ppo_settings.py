"""The `ppo:` section of a config: RL on the policy with rollouts from its own serving deployment."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from arena_ray.strict import InstructionsConfig, Strict


class RLPromptsConfig(InstructionsConfig):
    path: str = "../shared/data/instructions/alpaca_tiny.json"


class RewardConfig(Strict):
    # rm: a reward model (HF sequence-classification folder, e.g. the flywheel's rm stage) scores each answer.
    # judge: the config's judge model scores each answer with a single-answer rubric (0-5, divided by 5).
    source: Literal["rm", "judge"] = "judge"
    rm_path: Optional[str] = None
    rm_max_length: int = Field(1024, ge=16)
    judge_prompt: str = "rubric-additive-v1"
    judge_max_tokens: int = Field(256, ge=8)
    judge_temperature: float = Field(0.0, ge=0)
    judge_max_attempts: int = Field(3, ge=1)
    constrain_format: bool = True

    @model_validator(mode="after")
    def _rm_path(self) -> "RewardConfig":
        if self.source == "rm" and not self.rm_path:
            raise ValueError("reward.source 'rm' needs reward.rm_path")
        return self


class OpenRLHFConfig(Strict):
    """`backend: openrlhf` hands the job to OpenRLHF's Ray PPO (`python -m openrlhf.cli.train_ppo_ray`)."""

    actor_num_nodes: int = Field(1, ge=1)
    actor_num_gpus_per_node: int = Field(8, ge=1)
    ref_num_nodes: int = Field(1, ge=1)
    ref_num_gpus_per_node: int = Field(8, ge=1)
    critic_num_nodes: int = Field(1, ge=1)
    critic_num_gpus_per_node: int = Field(8, ge=1)
    vllm_num_engines: int = Field(4, ge=1)
    vllm_tensor_parallel_size: int = Field(2, ge=1)
    vllm_gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    colocate_all_models: bool = True
    zero_stage: int = Field(3, ge=0, le=3)
    bf16: bool = True
    gradient_checkpointing: bool = True
    packing_samples: bool = True
    micro_train_batch_size: int = Field(4, ge=1)
    train_batch_size: int = Field(128, ge=1)
    micro_rollout_batch_size: int = Field(8, ge=1)
    prompt_max_len: int = Field(1024, ge=16)
    critic_learning_rate: float = Field(9e-6, gt=0)
    # The judge as OpenRLHF's remote reward (--remote_rm_url): arena_ray's reward endpoint on Ray Serve.
    remote_rm_url: Optional[str] = None
    # The Python that has OpenRLHF installed (it pins its own ray/transformers/vllm: keep it in its own venv
    # or image); None: this interpreter.
    python: Optional[str] = None
    # Write the command (and the prompt file) but do not run it.
    dry_run: bool = False
    extra_args: tuple[str, ...] = ()


class PPOConfig(Strict):
    dir: str = "runs/ppo"
    # The policy: a vllm entry of `models`; its serving deployment produces the rollouts.
    policy: str
    backend: Literal["native", "openrlhf"] = "native"
    prompts: RLPromptsConfig = Field(default_factory=RLPromptsConfig)
    steps: int = Field(4, ge=1)
    prompts_per_step: int = Field(4, ge=1)
    samples_per_prompt: int = Field(4, ge=1)
    # Critic-free advantages over each prompt's group of samples: grpo (z-score), rloo (leave-one-out mean),
    # reinforce (reward minus the batch mean).
    advantage: Literal["grpo", "rloo", "reinforce"] = "grpo"
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(64, ge=1)
    learning_rate: float = Field(1e-6, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    ppo_epochs: int = Field(1, ge=1)
    clip_eps: float = Field(0.2, gt=0)
    # KL penalty to the frozen reference (the step-0 policy), k3 estimator, added to the loss.
    kl_coef: float = Field(0.01, ge=0)
    micro_batch_size: int = Field(4, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 0
    # Checkpoint the policy (safetensors) every this many steps; a re-run resumes from the last one.
    save_every: int = Field(1, ge=1)
    use_gpu: bool = False
    learner_cpus: float = Field(1, gt=0)
    # Rollout requests: concurrency, timeout, and attempts before a rollout is given up (a dead replica).
    max_in_flight: int = Field(16, ge=1)
    request_timeout_s: float = Field(300.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    openrlhf: OpenRLHFConfig = Field(default_factory=OpenRLHFConfig)

    @model_validator(mode="after")
    def _groups(self) -> "PPOConfig":
        if self.advantage in ("grpo", "rloo") and self.samples_per_prompt < 2:
            raise ValueError(f"advantage '{self.advantage}' needs samples_per_prompt >= 2")
        return self

"""What the add-a-language wizard has gathered: pages 1-4 fill it in, the training page runs it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class TrainingPlan:
    """Everything `lorawhisper train` needs, as the wizard's pages chose it.

    `warm_start` is "none", "auto", "fit" or a language code with an installed adapter; `moe` is 0 for
    off or K; `overrides` carries the preset's or the advanced panel's values by their CLI
    option names without dashes (`rank`, `lr`, `steps`, `epochs`, `batch_size`, `eval_every`).
    """

    language: str = ""
    language_name: str = ""
    data: Path | None = None
    dev: Path | None = None
    adapter_name: str = ""
    warm_start: str = "none"
    moe: int = 0
    preset: str = "Balanced"
    overrides: dict[str, object] = field(default_factory=dict)
    run_dir: Path | None = None
    model: str | None = None  # the backbone the app runs (None: the built-in one): adapters fit only it
    device: str = "auto"  # the app's device setting: "auto", "cpu" or "cuda"

    def train_args(self) -> list[str]:
        """The `lorawhisper train` arguments for this plan (without the program name)."""
        if not self.language or self.data is None:
            raise ValueError("a training plan needs a language and data")
        args = [str(self.data), "--language", self.language, "--warm-start", self.warm_start, "--json"]
        if self.dev is not None:
            args += ["--dev", str(self.dev)]
        if self.adapter_name:
            args += ["--name", self.adapter_name]
        if self.moe:
            args += ["--moe", str(self.moe)]
        if self.run_dir is not None:
            args += ["--run-dir", str(self.run_dir)]
        if self.model is not None:
            args += ["--model", self.model]
        if self.device != "auto":
            args += ["--device", self.device]
        for key, value in self.overrides.items():
            args += ["--" + key.replace("_", "-"), str(value)]
        return args

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("data", "dev", "run_dir"):
            data[key] = None if data[key] is None else str(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainingPlan:
        plan = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        for key in ("data", "dev", "run_dir"):
            value = getattr(plan, key)
            setattr(plan, key, None if value is None else Path(str(value)))
        return plan

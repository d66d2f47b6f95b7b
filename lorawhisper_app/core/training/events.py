"""Progress of a training run as plain events: the CLI prints them, the app plots them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass(frozen=True)
class TrainEvent:
    """`kind`: "phase" (a stage starts; `message`), "similarity" (`data["ranking"]`),
    "fit" (`data["ranking"]` by loss and `data["chosen"]`, with --warm-start fit), "step",
    "eval", "resumed", "cancelled", "done"."""

    kind: str
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    loss: float | None = None
    learning_rate: float | None = None
    dev_wer: float | None = None
    eta_s: float | None = None
    message: str = ""
    data: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "", {})}


EventSink = Callable[[TrainEvent], None]

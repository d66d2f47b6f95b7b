"""What the wizard's pages share besides the training plan: the checked data and the similarity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lorawhisper_app.core.adapter_meta import NAME_PATTERN
from lorawhisper_app.core.adapter_store import AdapterStore
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.wizard.plan import TrainingPlan

if TYPE_CHECKING:
    from lorawhisper_app.core.training.datasets import DatasetReport
    from lorawhisper_app.core.training.similarity import Neighbour


def adapter_name_problem(name: str, taken: set[str]) -> str:
    """Why `name` cannot name a new adapter ("" when it can)."""
    if not NAME_PATTERN.fullmatch(name):
        return "The name: 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit."
    if name in taken:
        return f"An adapter named {name} is installed already: choose another name."
    return ""


@dataclass(frozen=True)
class Similarity:
    """The new data's mean LID (adapters off) and its similarity to the installed adapters."""

    lid: dict[str, float]
    neighbours: list[Neighbour]
    decode_token: str
    device: str  # where training will run: "cuda" or "cpu"


@dataclass
class WizardState:
    store: AdapterStore
    holder: EngineHolder
    plan: TrainingPlan = field(default_factory=TrainingPlan)
    adapter_names: set[str] = field(default_factory=set)  # installed, filled in the background
    report: DatasetReport | None = None
    similarity: Similarity | None = None

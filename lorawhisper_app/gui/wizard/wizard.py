"""The "Add a language" wizard: six pages that gather a TrainingPlan, train it and install the adapter."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget, QWizard

from lorawhisper_app.core.adapter_store import AdapterStore
from lorawhisper_app.gui.engine_holder import EngineHolder
from lorawhisper_app.gui.wizard.data_page import DataPage
from lorawhisper_app.gui.wizard.language_page import LanguagePage
from lorawhisper_app.gui.wizard.plan import TrainingPlan
from lorawhisper_app.gui.wizard.result_page import ResultPage
from lorawhisper_app.gui.wizard.settings_page import SettingsPage
from lorawhisper_app.gui.wizard.similarity_page import SimilarityPage
from lorawhisper_app.gui.wizard.state import WizardState
from lorawhisper_app.gui.wizard.training_page import TrainingPage

LANGUAGE_PAGE, DATA_PAGE, SIMILARITY_PAGE, SETTINGS_PAGE, TRAINING_PAGE, RESULT_PAGE = range(6)


class AddLanguageWizard(QWizard):
    """Non-modal: closing it leaves a training run going (the training page owns the run).

    `engine_holder` gives the app's loaded engine for the similarity measurement (its
    backbone is loaded in the background when it is not yet).
    """

    def __init__(self, store: AdapterStore, engine_holder: EngineHolder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = WizardState(store, engine_holder)
        self.store = store
        self.setObjectName("addLanguageWizard")
        self.setWindowTitle("Add a language")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.language_page = LanguagePage(self.state)
        self.data_page = DataPage(self.state)
        self.similarity_page = SimilarityPage(self.state)
        self.settings_page = SettingsPage(self.state)
        self.training_page = TrainingPage(lambda: self.plan, store)
        self.result_page = ResultPage(store)
        for page_id, page in enumerate((
            self.language_page, self.data_page, self.similarity_page,
            self.settings_page, self.training_page, self.result_page,
        )):
            self.setPage(page_id, page)
        self.setStartId(LANGUAGE_PAGE)
        self.currentIdChanged.connect(self._page_shown)
        self.resize(820, 620)

    def _page_shown(self, page_id: int) -> None:
        if page_id == SIMILARITY_PAGE:  # back from the settings page, whose Best fit offer may have changed the start
            self.similarity_page.show_start(self.plan.warm_start)

    @property
    def plan(self) -> TrainingPlan:
        return self.state.plan

    @plan.setter
    def plan(self, plan: TrainingPlan) -> None:
        self.state.plan = plan

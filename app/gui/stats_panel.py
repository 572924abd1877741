"""Live numbers: source and processing rates, dropped frames, latency, people."""

from __future__ import annotations

from PyQt6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from app.services.stats import StatsSnapshot


class StatsPanel(QGroupBox):
    FIELDS = (("source_fps", "Source fps"), ("processed_fps", "Processed fps"), ("dropped", "Dropped frames"),
              ("latency", "Latency"), ("people", "People"), ("processed", "Frames processed"))

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Stats", parent)
        form = QFormLayout(self)
        self.values: dict[str, QLabel] = {}
        for key, title in self.FIELDS:
            label = QLabel("–")
            label.setObjectName(f"stat_{key}")
            self.values[key] = label
            form.addRow(title, label)
        self.latency_tooltip = "Mean (max) time from capture to display over the last 30 frames"
        self.values["latency"].setToolTip(self.latency_tooltip)
        self.snapshot: StatsSnapshot | None = None

    def update_stats(self, s: StatsSnapshot) -> None:
        self.snapshot = s
        self.values["source_fps"].setText(f"{s.source_fps:.1f}" if s.source_fps else "–")
        self.values["processed_fps"].setText(f"{s.processed_fps:.1f}")
        self.values["dropped"].setText(str(s.dropped))
        self.values["latency"].setText("–" if s.latency_ms is None else
                                       f"{s.latency_ms:.0f} ms (max {s.latency_max_ms:.0f})")
        self.values["people"].setText(str(s.people))
        self.values["processed"].setText(str(s.processed))

    def text(self, key: str) -> str:
        return self.values[key].text()

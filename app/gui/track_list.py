"""The side list of current tracks: ID (on its skeleton colour), time since first seen, mean confidence."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from posecore.draw import track_color
from app.services.render import TrackRow


class TrackList(QTableWidget):
    HEADERS = ("ID", "Seen (s)", "Mean conf.")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, len(self.HEADERS), parent)
        self.setHorizontalHeaderLabels(self.HEADERS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setMinimumHeight(120)

    def set_rows(self, rows: list[TrackRow]) -> None:
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            b, g, rr = track_color(row.track_id)
            id_item = QTableWidgetItem(f"{row.track_id}" + (" (lost)" if row.lost else ""))
            id_item.setBackground(QColor(rr, g, b))  # the skeleton's colour; text stays readable on it
            id_item.setForeground(QColor(0, 0, 0))
            cells = (id_item, QTableWidgetItem(f"{row.seen_s:.1f}"), QTableWidgetItem(f"{row.mean_conf:.2f}"))
            for c, item in enumerate(cells):
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.setItem(r, c, item)

    def track_ids(self) -> list[int]:
        return [int(self.item(r, 0).text().split()[0]) for r in range(self.rowCount())]

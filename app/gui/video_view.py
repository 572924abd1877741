"""The video area: the newest annotated frame, scaled to fit, and a drop target for video files."""

from __future__ import annotations

from PyQt6.QtCore import QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

from app.services.player import ProcessedFrame

from .images import bgr_to_qimage


class VideoView(QWidget):
    presented = pyqtSignal(object)  # ProcessedFrame, once it has been painted
    fileDropped = pyqtSignal(str)

    PLACEHOLDER = "Choose a camera, open a video file or a stream URL,\nor drop a video here."

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self._image: QImage | None = None
        self._frame: ProcessedFrame | None = None
        self._unreported: ProcessedFrame | None = None

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    @property
    def frame(self) -> ProcessedFrame | None:
        return self._frame

    def image(self) -> QImage | None:
        return self._image

    def show_frame(self, pf: ProcessedFrame) -> None:
        self._frame = pf
        self._image = bgr_to_qimage(pf.image)
        self._unreported = pf
        self.update()

    def clear(self) -> None:
        self._frame = self._image = self._unreported = None
        self.update()

    def target_rect(self) -> QRectF:
        """Where the frame is drawn: as large as fits, centred, aspect kept."""
        if self._image is None or self._image.width() == 0:
            return QRectF(self.rect())
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        if self._image is None:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.PLACEHOLDER)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.target_rect(), self._image)
        painter.end()
        if self._unreported is not None:
            pf, self._unreported = self._unreported, None
            self.presented.emit(pf)

    # ------------------------------------------------------------------ drag and drop
    @staticmethod
    def _local_file(event) -> str | None:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._local_file(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._local_file(event)
        if path:
            event.acceptProposedAction()
            self.fileDropped.emit(path)
        else:
            event.ignore()

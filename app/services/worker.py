"""The pipeline worker: one thread that owns the source, the pipeline, the renderer and the recorder,
and plays the source (the player's state machine: open, play, pause, seek, step, record).

Its parts live beside it: the model settings and the pipeline factory (``model_settings``), the states
and events the window sees (``player``), a frame's processing (``frame_processing``) and recording
(``recording``).

It knows nothing of Qt. Callers (the window's service, a benchmark, a test) send it commands through
thread-safe methods that only enqueue; it reports back through a :class:`WorkerEvents` object whose
methods it calls from its own thread. The pipeline is built lazily, on the worker thread, the first
time frames need processing, and again whenever the model settings change (the old one stays in use
if the new one fails to load).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from posecore.autosize import AUTO
from posecore.draw import DrawOptions
from posecore.errors import ConfigError, OccluposeError, OutputError, SourceError

from .auto_size import size_for_source
from .feeds import Captured, EndOfFeed, Feed, FileFeed, SourceOpener, open_feed
from .frame_processing import FrameProcessor
from .model_settings import PipelineFactory, PipelineSettings, default_pipeline_factory
from .player import PlayerState, ProcessedFrame, Status, WorkerEvents
from .recording import Recorder, RecordingInfo, RecordingRequest, session_stem
from .stats import StatsAccumulator

log = logging.getLogger("occlupose")

# (spec, realtime, on_captured) -> Feed; the default opens sources with ``open_feed``.
FeedOpener = Callable[[str, bool, Callable[[float], None]], Feed]


@dataclass
class WorkerOptions:
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    draw: DrawOptions = field(default_factory=DrawOptions)
    det_threshold: float = 0.0  # persons scoring below are removed before tracking
    realtime: bool = False  # files: play at their own rate, dropping frames when behind
    poll_s: float = 0.05  # longest wait for a frame or a command before looking again


class WorkerLoop:
    """Owns everything that runs off the GUI thread. Call ``run()`` in a thread; the other public
    methods may be called from any thread and return at once."""

    def __init__(self, events: WorkerEvents, pipeline_factory: PipelineFactory = default_pipeline_factory,
                 source_opener: SourceOpener | None = None, stats: StatsAccumulator | None = None,
                 options: WorkerOptions | None = None, clock: Callable[[], float] = time.perf_counter,
                 feed_opener: FeedOpener | None = None):
        opts = options or WorkerOptions()
        self.events = events
        self.stats = stats or StatsAccumulator(clock)
        self._factory = pipeline_factory
        self._feed_opener = feed_opener or (lambda spec, realtime, on_captured:
                                            open_feed(spec, realtime, source_opener, on_captured))
        self._clock = clock
        self._poll = opts.poll_s
        self._commands: queue.Queue = queue.Queue()
        # Owned by the worker thread from here on.
        self._settings = opts.settings
        self._realtime = bool(opts.realtime)
        self._frames = FrameProcessor(opts.draw, opts.det_threshold, clock, self.stats)
        self._pipeline = None
        self._model: str | None = None
        self._upsized = False  # whether the pipeline runs at a size auto chose above the base
        self._sized = False  # whether auto's choice was made for this source and pipeline
        self._feed: Feed | None = None
        self._spec: str | None = None
        self._recorder: Recorder | None = None
        self._status = Status.IDLE
        self._playing = False
        self._last_index: int | None = None
        self._last: ProcessedFrame | None = None
        self._quit = False

    # ------------------------------------------------------------------ commands (any thread)
    def _submit(self, name: str, *args) -> None:
        self._commands.put((name, args))

    def open(self, spec: str, play: bool = True) -> None:
        self._submit("open", str(spec), play)

    def play(self) -> None:
        self._submit("play")

    def pause(self) -> None:
        self._submit("pause")

    def stop(self) -> None:
        self._submit("stop")

    def seek(self, index: int) -> None:
        self._submit("seek", int(index))

    def step(self, delta: int) -> None:
        self._submit("step", int(delta))

    def set_settings(self, settings: PipelineSettings) -> None:
        self._submit("settings", settings)

    def set_draw_options(self, options: DrawOptions) -> None:
        self._submit("draw", dataclasses.replace(options))

    def set_det_threshold(self, value: float) -> None:
        self._submit("det_threshold", float(value))

    def set_realtime(self, realtime: bool) -> None:
        self._submit("realtime", bool(realtime))

    def start_recording(self, folder: str | Path, video: bool = True, jsonl: bool = True, csv: bool = True) -> None:
        self._submit("record", Path(folder), video, jsonl, csv)

    def stop_recording(self) -> None:
        self._submit("stop_record")

    def shutdown(self) -> None:
        self._submit("quit")

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        try:
            while not self._quit:
                self._handle_commands(block=not self._playing)
                if self._playing and not self._quit:
                    self._guard(self._play_one)
        finally:
            self._guard(self._close_source)

    def _guard(self, fn, *args) -> None:
        """Run one step; an unexpected exception is reported and the worker carries on."""
        try:
            fn(*args)
        except Exception as e:  # a bug must not kill the thread the window depends on
            log.debug("worker step failed", exc_info=True)  # the traceback stays in the debug log
            self.events.error("internal", f"internal error: {type(e).__name__}: {e}")
            self._playing = False
            if self._status in (Status.PLAYING, Status.LOADING, Status.OPENING):
                self._set_status(Status.PAUSED if self._feed is not None else Status.IDLE)

    def _handle_commands(self, block: bool) -> None:
        try:
            name, args = self._commands.get(timeout=self._poll) if block else self._commands.get_nowait()
        except queue.Empty:
            return
        while True:
            self._guard(getattr(self, f"_cmd_{name}"), *args)
            if self._quit:
                return
            try:
                name, args = self._commands.get_nowait()
            except queue.Empty:
                return

    # ------------------------------------------------------------------ state
    def state(self) -> PlayerState:
        feed = self._feed
        return PlayerState(
            status=self._status,
            source=feed.name if feed else None,
            spec=self._spec if feed else None,
            is_live=bool(feed and feed.is_live),
            seekable=bool(feed and feed.seekable),
            frame_count=feed.frame_count if feed else None,
            fps=feed.fps if feed else None,
            realtime=self._realtime,
            model=self._model,
            recording=self._recorder_stem(),
        )

    def _recorder_stem(self) -> Path | None:
        if self._recorder is None:
            return None
        return Path(self._recorder.request.folder) / self._recorder.request.stem

    def _set_status(self, status: Status) -> None:
        self._status = status
        self.events.state_changed(self.state())

    def _reset_history(self) -> None:
        if self._pipeline is not None:
            self._pipeline.reset()
        self._frames.reset()

    # ------------------------------------------------------------------ source
    def _cmd_open(self, spec: str, play: bool) -> None:
        self._close_source()
        self._set_status(Status.OPENING)
        try:
            feed = self._feed_opener(spec, self._realtime, self.stats.on_captured)
        except OccluposeError as e:
            self.events.error("source", str(e))
            self._set_status(Status.IDLE)
            return
        except Exception as e:  # an opener that fails in an unforeseen way is still a source problem
            self.events.error("source", f"cannot open {spec}: {type(e).__name__}: {e}")
            self._set_status(Status.IDLE)
            return
        self._feed, self._spec = feed, spec
        self._sized = False  # a new source: auto chooses its input size again
        if self._upsized:
            self._pipeline, self._upsized = None, False  # built again at the base size, to measure it
        self.stats.reset(None if feed.is_live else feed.fps)
        self._reset_history()
        self._last = None
        self._playing = play
        self._set_status(Status.PLAYING if play else Status.PAUSED)
        if not play:
            self._show_next()

    def _close_source(self) -> None:
        self._stop_recording()
        if self._feed is not None:
            feed, self._feed = self._feed, None
            feed.close()
        self._playing = False
        self._spec = None

    def _cmd_stop(self) -> None:
        self._close_source()
        self._last = None
        self._set_status(Status.IDLE)

    def _cmd_quit(self) -> None:
        self._quit = True

    # ------------------------------------------------------------------ playback
    def _cmd_play(self) -> None:
        if self._feed is None:
            self.events.error("source", "no source open: choose a camera, a file or a stream first")
            return
        if self._status == Status.ENDED:
            if not self._feed.seekable:
                self.events.message("the source has ended; open it again to replay")
                return
            self._feed.seek(0)
            self._reset_history()
        self._feed.set_paused(False)
        if self._feed.is_live:
            self._frames.last_index = None  # pause gaps are not drops
        self._playing = True
        self._set_status(Status.PLAYING)

    def _cmd_pause(self) -> None:
        if self._feed is None or not self._playing:
            return
        self._playing = False
        self._feed.set_paused(True)
        self._set_status(Status.PAUSED)

    def _cmd_realtime(self, realtime: bool) -> None:
        self._realtime = realtime
        if isinstance(self._feed, FileFeed):
            self._feed.set_realtime(realtime)
        self.events.state_changed(self.state())

    def _cmd_seek(self, index: int) -> None:
        feed = self._feed
        if feed is None or not feed.seekable:
            self.events.message("seeking works in video files only")
            return
        try:
            feed.seek(index)
        except SourceError as e:
            self.events.error("source", str(e))
            return
        self._reset_history()  # a jump breaks the tracks' continuity
        if self._status == Status.ENDED:
            self._set_status(Status.PAUSED)
        if not self._playing:
            self._show_next()

    def _cmd_step(self, delta: int) -> None:
        feed = self._feed
        if feed is None or feed.is_live:
            self.events.message("stepping works in video files only")
            return
        if self._playing:
            self._cmd_pause()
        if delta >= 1:
            for _ in range(delta):
                if not self._show_next():
                    break
        elif delta < 0 and self._last is not None:
            self._cmd_seek(max(0, self._last.index + delta))

    def _show_next(self) -> bool:
        """Process and show the next frame of a paused file; False at its end."""
        if self._feed is None or self._feed.is_live:
            return False
        if not self._ensure_pipeline():
            return False
        if not isinstance(self._feed, FileFeed):
            return False
        try:
            captured = self._feed.next_now()
        except EndOfFeed:
            self._end_of_feed()
            return False
        except SourceError as e:
            self._source_failed(e)
            return False
        return self._process(captured)

    def _play_one(self) -> None:
        if not self._ensure_pipeline():
            self._playing = False
            self._set_status(Status.PAUSED)
            return
        if self._status != Status.PLAYING:
            self._set_status(Status.PLAYING)
        try:
            captured = self._feed.next(self._poll)
        except EndOfFeed:
            self._end_of_feed()
            return
        except SourceError as e:
            self._source_failed(e)
            return
        if captured is not None:
            self._process(captured)

    def _end_of_feed(self) -> None:
        self._playing = False
        info = self._stop_recording()
        self._set_status(Status.ENDED)
        if info is not None:
            self.events.message(f"recording finished: {info.frames} frames")

    def _source_failed(self, e: Exception) -> None:
        self.events.error("source", str(e))
        self._close_source()
        self._set_status(Status.IDLE)

    # ------------------------------------------------------------------ the pipeline
    def _ensure_pipeline(self) -> bool:
        if self._pipeline is not None:
            return True
        return self._build(self._settings)

    def _build(self, settings: PipelineSettings) -> bool:
        previous = self._status
        self._set_status(Status.LOADING)
        self.events.message(f"loading model: {settings.describe()}")
        try:
            pipeline = self._factory(settings)
        except OccluposeError as e:
            self.events.error("model", str(e))
            self._set_status(previous if previous != Status.LOADING else Status.PAUSED)
            return False
        except Exception as e:
            self.events.error("model", f"cannot load the model ({settings.describe()}): {type(e).__name__}: {e}")
            self._set_status(previous if previous != Status.LOADING else Status.PAUSED)
            return False
        self._pipeline, self._settings, self._model = pipeline, settings, settings.describe()
        self._upsized, self._sized = False, False
        self._frames.renderer.skeleton = pipeline.skeleton
        self._reset_history()
        self.events.message(f"model ready: {self._model}")
        self._set_status(previous if previous != Status.LOADING else Status.PAUSED)
        return True

    def _cmd_settings(self, settings: PipelineSettings) -> None:
        if settings == self._settings and self._pipeline is not None:
            return
        try:
            settings.validate()
        except ConfigError as e:
            self.events.error("model", str(e))
            return
        if self._pipeline is None and self._feed is None:
            self._settings = settings  # nothing to run yet: built when playback starts
            self.events.message(f"model will load when playback starts: {settings.describe()}")
            return
        self._build(settings)

    def _cmd_det_threshold(self, value: float) -> None:
        self._frames.det_threshold = value

    def _cmd_draw(self, options: DrawOptions) -> None:
        self._frames.renderer.set_options(options)
        if self._last is not None and not self._playing:
            self._last = self._frames.redraw(self._last)
            self.events.frame_ready(self._last)

    def _process(self, captured: Captured) -> bool:
        # Photos of a folder are tracked each alone, as `occlupose process` does by default.
        stills = self._pipeline.stills or (self._feed is not None and self._feed.stills)
        if not self._sized:
            self._sized = True
            if self._settings.imgsz == AUTO:
                self._choose_size(captured.frame.image, stills)
        try:
            pf = self._frames.process(self._pipeline, captured, stills, self._feed.name if self._feed else "")
        except OccluposeError as e:  # e.g. weights that do not fit this backend
            self.events.error("model", str(e))
            self._playing = False
            self._set_status(Status.PAUSED)
            return False
        if self._recorder is not None:
            try:
                self._recorder.write(pf.image, pf.result)
            except (OutputError, ValueError) as e:
                self.events.error("output", f"recording stopped: {e}")
                self._stop_recording()
        self._last = pf
        self.events.frame_ready(pf)
        return True

    def _choose_size(self, image, stills: bool) -> None:
        """``imgsz: auto``: the input size for this source, from its first frame (services.auto_size)."""
        try:
            choice, pipeline, sized = size_for_source(self._settings, self._pipeline, image, stills, self._factory)
        except OccluposeError as e:  # e.g. the model fails at the larger size: the base size stays
            self.events.error("model", f"input size auto: {e}; staying at the base size")
            return
        if pipeline is not self._pipeline:
            self._pipeline, self._upsized = pipeline, True
            self._frames.renderer.skeleton = pipeline.skeleton
            self._reset_history()
        self._model = sized.describe()
        self.events.state_changed(self.state())
        self.events.message(f"input size {choice.imgsz} (auto: {choice.reason})")

    # ------------------------------------------------------------------ recording
    def _cmd_record(self, folder: Path, video: bool, jsonl: bool, csv: bool) -> None:
        if self._feed is None:
            self.events.error("output", "open a source before recording")
            return
        self._stop_recording()
        fps = self._feed.fps
        if self._feed.is_live:
            # The video holds the processed frames only: their rate keeps its playback near real time.
            measured = self.stats.snapshot().processed_fps
            fps = measured if measured > 0 else fps
        skeleton = self._pipeline.skeleton if self._pipeline is not None else "coco17"
        request = RecordingRequest(folder, session_stem(self._feed.name), fps, skeleton, video, jsonl, csv)
        try:
            self._recorder = Recorder(request)
        except OccluposeError as e:
            self.events.error("output", str(e))
            return
        self.events.message(f"recording to {folder / request.stem}.*")
        self.events.state_changed(self.state())

    def _cmd_stop_record(self) -> None:
        info = self._stop_recording()
        if info is not None:
            self.events.message(f"recorded {info.frames} frames")

    def _stop_recording(self) -> RecordingInfo | None:
        if self._recorder is None:
            return None
        recorder, self._recorder = self._recorder, None
        try:
            info = recorder.stop()
        except OccluposeError as e:
            self.events.error("output", f"recording: {e}")
            return None
        self.events.recording_finished(info)
        if not self._quit:
            self.events.state_changed(self.state())
        return info

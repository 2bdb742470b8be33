"""The main window: the preview on the left, the controls on the right, shortcuts, settings.

It wires the panels to the controller and keeps the settings file in step;
each panel and the controller do their own job.
"""
from __future__ import annotations

from PyQt6.QtCore import QByteArray, Qt, QTimer
from PyQt6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QSplitter, QTabWidget, QToolButton, QVBoxLayout, QWidget

from app.errors import HarmonicamError
from app.gui.controller import Controller
from app.gui.gallery import BackgroundGallery
from app.gui.icons import app_icon
from app.gui.message_bar import MessageBar, sentence
from app.gui.preview import MASK, OUTPUT, SPLIT, PreviewPane
from app.gui.quality_panel import QualityPanel
from app.gui.settings import Settings, SettingsStore
from app.gui.source_panel import SourcePanel
from app.gui.style import STYLE
from app.gui.vcam_panel import VirtualCameraPanel
from app.idle import PAUSED_TEXT
from app.pipeline import FrameResult

SIZE = (1280, 800)
SIDE_WIDTH = 410
SAVE_DELAY_MS = 400
STATS_MS = 500

#: (label, shortcuts, tooltip) of the preview toolbar's buttons, by action.
ACTIONS = {
    "split": ("Before / after", ("B",), "Original on the left, output on the right"),
    "mask": ("Mask", ("M",), "Show the matte (white = person)"),
    "overlay": ("Performance", ("F",), "Frame rate, per-stage time, device"),
    "next": ("Next background", ("N",), "Switch to the next background in the gallery"),
    "fullscreen": ("Full screen", ("F11",), "Only the preview (Esc or F11 to leave)"),
}
VCAM_SHORTCUTS = ("Ctrl+Space", "F5")


class MainWindow(QMainWindow):
    def __init__(self, store: SettingsStore, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.settings = settings if settings is not None else store.load()
        s = self.settings
        self.setWindowTitle("Harmonicam")
        self.setWindowIcon(app_icon())
        self.setStyleSheet(STYLE)
        self.controller = Controller(s, self)

        self.preview = PreviewPane()
        self.preview.mirror = s.mirror_preview
        self.preview.set_mode(s.view)
        self.preview.overlay.setVisible(s.show_overlay)
        self.message_bar = MessageBar()
        self.gallery = BackgroundGallery(s)
        self.source_panel = SourcePanel(s)
        self.quality_panel = QualityPanel(s)
        self.vcam_panel = VirtualCameraPanel(s)
        self.buttons = self._toolbar_buttons()
        self._build_layout()
        self.fps_label = QLabel()
        self.statusBar().addPermanentWidget(self.fps_label)
        self._connect()
        self._shortcuts()

        self._save_timer = QTimer(self, singleShot=True, interval=SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_settings)
        self._stats_timer = QTimer(self, interval=STATS_MS)
        self._stats_timer.timeout.connect(self.refresh_stats)
        self._stats_timer.start()
        self._sync_view_buttons()
        if not (s.geometry and self.restoreGeometry(QByteArray.fromHex(s.geometry.encode()))):
            self.resize(*SIZE)
        if store.notice:
            self.message_bar.show_message(store.notice, error=True)
        self.statusBar().showMessage("Starting the video…")
        self.controller.start()

    # --- construction ----------------------------------------------------------------------------
    def _toolbar_buttons(self) -> dict[str, QToolButton]:
        buttons = {}
        for name, (label, keys, tip) in ACTIONS.items():
            button = QToolButton()
            button.setText(label)
            button.setToolTip(f"{tip} ({' or '.join(keys)})")
            button.setCheckable(name != "next")
            buttons[name] = button
        buttons["split"].clicked.connect(lambda: self.toggle_view(SPLIT))
        buttons["mask"].clicked.connect(lambda: self.toggle_view(MASK))
        buttons["overlay"].clicked.connect(self.toggle_overlay)
        buttons["next"].clicked.connect(self.gallery.select_next)
        buttons["fullscreen"].clicked.connect(self.toggle_fullscreen)
        return buttons

    def _build_layout(self) -> None:
        toolbar = QHBoxLayout()
        for name in ("split", "mask", "overlay"):
            toolbar.addWidget(self.buttons[name])
        toolbar.addStretch(1)
        toolbar.addWidget(self.buttons["next"])
        toolbar.addWidget(self.buttons["fullscreen"])
        self.toolbar = QWidget()
        self.toolbar.setLayout(toolbar)
        toolbar.setContentsMargins(0, 0, 0, 0)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(12, 12, 6, 12)
        left_layout.setSpacing(8)
        left_layout.addWidget(self.message_bar)
        left_layout.addWidget(self.toolbar)
        left_layout.addWidget(self.preview, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.gallery, "Background")
        self.tabs.addTab(self.source_panel, "Source")
        self.tabs.addTab(self.quality_panel, "Quality")
        self.side = QWidget()
        self.side.setObjectName("side")
        self.side.setMinimumWidth(340)
        side_layout = QVBoxLayout(self.side)
        side_layout.setContentsMargins(6, 12, 12, 12)
        side_layout.setSpacing(10)
        side_layout.addWidget(self.tabs, 1)
        side_layout.addWidget(self.vcam_panel)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("central")
        splitter.addWidget(left)
        splitter.addWidget(self.side)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([SIZE[0] - SIDE_WIDTH, SIDE_WIDTH])
        self.setCentralWidget(splitter)

    def _connect(self) -> None:
        c = self.controller
        c.frame_ready.connect(self._show_result)
        c.message.connect(self.show_message)
        c.camera_status.connect(self._camera_status)
        c.applied.connect(self._applied)
        c.failed.connect(self._failed)
        c.vcam_lost.connect(self._vcam_lost)
        self.gallery.chosen.connect(c.set_background)
        self.gallery.problem.connect(self.show_message)
        self.gallery.edited.connect(self.schedule_save)
        self.source_panel.source_requested.connect(self._request_source)
        self.source_panel.rescan_requested.connect(c.rescan_cameras)
        self.source_panel.mirror_preview_changed.connect(self._set_mirror_preview)
        self.quality_panel.stage_requested.connect(self._request_stage)
        self.quality_panel.device_requested.connect(self._request_device)
        # Instant changes: applied by the controller right away, then saved.
        for signal, slot in ((self.source_panel.mirror_output_changed, c.set_mirror_output),
                             (self.vcam_panel.always_on_changed, c.set_vcam_always_on),
                             (self.quality_panel.strength_changed, c.set_strength),
                             (self.quality_panel.keep_bright_changed, c.set_keep_bright),
                             (self.quality_panel.matte_changed, c.set_matte_options)):
            signal.connect(slot)
            signal.connect(self.schedule_save)
        self.vcam_panel.start_requested.connect(self.start_vcam)
        self.vcam_panel.stop_requested.connect(self.stop_vcam)
        app = QGuiApplication.instance()
        app.applicationStateChanged.connect(self._application_state)
        self._application_state(app.applicationState())

    def _application_state(self, state: Qt.ApplicationState) -> None:
        """While the user works in the window its preview needs frames; once they are elsewhere, the pipeline
        may pause when no app reads the virtual camera."""
        self.controller.window_active = state == Qt.ApplicationState.ApplicationActive

    def _shortcuts(self) -> None:
        actions = {"split": lambda: self.toggle_view(SPLIT), "mask": lambda: self.toggle_view(MASK),
                   "overlay": self.toggle_overlay, "next": self.gallery.select_next,
                   "fullscreen": self.toggle_fullscreen}
        bindings = [(key, actions[name]) for name, (_, keys, _) in ACTIONS.items() for key in keys]
        bindings += [(key, self.vcam_panel.toggle) for key in VCAM_SHORTCUTS]
        bindings.append(("Esc", self._leave_fullscreen))
        for key, slot in bindings:
            QShortcut(QKeySequence(key), self, activated=slot)

    # --- messages --------------------------------------------------------------------------------
    def show_message(self, text: str, error: bool = True) -> None:
        """Problems go to the banner (they stay until dismissed); news goes to the status bar."""
        if error:
            self.message_bar.show_message(text, error=True)
        self.statusBar().showMessage(sentence(text))

    def _camera_status(self, text: str, lost: bool) -> None:
        if lost:
            self.message_bar.show_message(text, error=True)
        else:
            self.message_bar.hide()
        self.statusBar().showMessage(sentence(text))

    # --- controller outcomes ---------------------------------------------------------------------
    def _show_result(self, result: FrameResult) -> None:
        self.preview.show_result(result)

    def _show_source(self) -> None:
        source = self.controller.source
        self.source_panel.show_running(self.controller.source_spec, source.description if source else "")

    def _applied(self, what: str) -> None:
        c = self.controller
        if what == "cameras":
            self.source_panel.set_cameras(c.cameras)
            self._show_source()
        elif what == "pipeline":  # the controller has said what it shows
            self._show_source()
            self.quality_panel.show_settings()
            self.gallery.select_spec(self.settings.background)
        elif what == "source":
            self._show_source()
            self.statusBar().showMessage(f"Now showing: {c.source.description}.")
            if c.vcam is not None and c.vcam.size != c.source.size:
                w, h = c.vcam.size
                self.statusBar().showMessage(f"Now showing: {c.source.description}. The virtual camera keeps "
                                             f"sending {w} × {h}; restart it to use the new resolution.")
        elif what == "background":
            self.gallery.settle(True)
        elif what == "device":
            self.quality_panel.show_settings()
            self._show_source()
            self.refresh_stats()
            self.statusBar().showMessage(f"The pipeline now runs on {c.device.upper()}.")
        else:
            self.quality_panel.show_settings()
            self.statusBar().showMessage(f"{what.capitalize()}: {getattr(self.settings, what)}.")
        self.schedule_save()

    def _failed(self, what: str, text: str) -> None:
        self.show_message(text, error=True)
        if what == "background":
            self.gallery.settle(False)
        elif what == "source":
            self._show_source()
        elif what in ("matting", "blend", "harmonizer", "device"):
            self.quality_panel.show_settings()
            if what == "device":  # the source may have fallen back to the sample clip
                self._show_source()

    def _request_source(self, spec: str, size: tuple[int, int], fps: float) -> None:
        self.statusBar().showMessage("Switching the source…")
        self.controller.set_source(spec, size, fps)

    def _request_stage(self, kind: str, name: str, path: str | None) -> None:
        self.statusBar().showMessage(f"Loading {name}…")
        if kind == "matting":
            self.controller.set_matting(name, path)
        elif kind == "harmonizer":
            self.controller.set_harmonizer(name, path)
        else:
            self.controller.set_blend(name)

    def _request_device(self, name: str) -> None:
        self.statusBar().showMessage("Rebuilding the pipeline on the new device…")
        self.controller.set_device(name)

    # --- virtual camera --------------------------------------------------------------------------
    def start_vcam(self, backend: str | None, device: str | None) -> None:
        try:
            vcam = self.controller.start_vcam(backend, device)
        except HarmonicamError as exc:
            self.vcam_panel.show_problem(exc)  # the reason and the fix, in full
            self.show_message("the virtual camera could not start; what to do is shown under its Start button")
            return
        self.vcam_panel.show_running(vcam)
        self.statusBar().showMessage(f"Sending to the {vcam.description}.")
        self.schedule_save()

    def stop_vcam(self) -> None:
        self.controller.stop_vcam()
        self.vcam_panel.show_running(None)
        self.statusBar().showMessage("The virtual camera is off.")

    def _vcam_lost(self, text: str) -> None:
        self.vcam_panel.show_running(None)
        self.show_message(text, error=True)

    # --- view ------------------------------------------------------------------------------------
    def toggle_view(self, mode: str) -> None:
        self.settings.view = OUTPUT if self.preview.mode == mode else mode
        self.preview.set_mode(self.settings.view)
        self._sync_view_buttons()
        self.schedule_save()

    def toggle_overlay(self) -> None:
        self.settings.show_overlay = not self.settings.show_overlay
        self.preview.overlay.setVisible(self.settings.show_overlay)
        self.refresh_stats()
        self._sync_view_buttons()
        self.schedule_save()

    def _set_mirror_preview(self, mirror: bool) -> None:
        self.settings.mirror_preview = self.preview.mirror = mirror
        self.schedule_save()

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self._leave_fullscreen()
            return
        for widget in (self.side, self.toolbar, self.statusBar()):
            widget.hide()
        self.showFullScreen()
        self._sync_view_buttons()

    def _leave_fullscreen(self) -> None:
        if not self.isFullScreen():
            return
        self.showNormal()
        for widget in (self.side, self.toolbar, self.statusBar()):
            widget.show()
        self._sync_view_buttons()

    def _sync_view_buttons(self) -> None:
        checked = {"split": self.preview.mode == SPLIT, "mask": self.preview.mode == MASK,
                   "overlay": self.settings.show_overlay, "fullscreen": self.isFullScreen()}
        for name, on in checked.items():
            self.buttons[name].setChecked(on)

    def refresh_stats(self) -> None:
        pipeline, source = self.controller.pipeline, self.controller.source
        paused = pipeline is not None and pipeline.times.paused
        self.vcam_panel.refresh(paused)
        if self.preview.overlay.isVisible():
            self.preview.overlay.refresh(pipeline)
        if paused:
            self.fps_label.setText(PAUSED_TEXT)
        elif pipeline is not None and source is not None:  # the device is the one the shown pipeline runs on
            w, h = source.size
            self.fps_label.setText(f"{pipeline.times.fps():.1f} FPS · {w} × {h} · {pipeline.device.upper()}")

    # --- settings and closing --------------------------------------------------------------------
    def schedule_save(self) -> None:
        self._save_timer.start()

    def save_settings(self) -> None:
        self._save_timer.stop()
        if not self.isFullScreen():
            self.settings.geometry = bytes(self.saveGeometry().toHex()).decode()
        self.store.save(self.settings)

    def closeEvent(self, event) -> None:
        """Stop the virtual camera, the capture and the pipeline (threads joined), then save."""
        self._stats_timer.stop()
        self.controller.shutdown()
        self.vcam_panel.show_running(None)
        self.save_settings()
        super().closeEvent(event)

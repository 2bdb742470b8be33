"""Settings file: round trip, invalid values, damaged files (no window needed)."""
from __future__ import annotations

import json

from app.gui.settings import Settings, SettingsStore, from_dict


def test_round_trip(tmp_path):
    store = SettingsStore(tmp_path / "settings.json")
    settings = Settings(source="clip.mp4", resolution=(640, 360), fps=24.0, background="#102030",
                        user_media=["/a.png"], harmonizer_weights="/w.pth", view="split")
    store.save(settings)
    assert SettingsStore(tmp_path / "settings.json").load() == settings
    assert not list(tmp_path.glob(".settings.*"))  # no temporary file left behind


def test_invalid_values_fall_back_one_by_one():
    settings, invalid = from_dict({"fps": "fast", "strength": 0.25, "resolution": [1, 2], "view": "nope",
                                   "user_media": ["/x.png", "/x.png"], "unknown": 1})
    assert sorted(invalid) == ["fps", "resolution", "view"]
    assert settings.strength == 0.25 and settings.fps == Settings().fps
    assert settings.resolution == Settings().resolution and settings.view == "output"
    assert settings.user_media == ["/x.png"]


def test_damaged_file_is_kept_aside(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{ not json")
    store = SettingsStore(path)
    assert store.load() == Settings()
    assert "damaged" in store.notice and "settings.json.bad" in store.notice
    assert (tmp_path / "settings.json.bad").read_text() == "{ not json"
    assert not path.exists()


def test_not_an_object_counts_as_damaged(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps([1, 2]))
    store = SettingsStore(path)
    assert store.load() == Settings() and store.notice


def test_memory_store_writes_nothing(tmp_path):
    store = SettingsStore(None)
    store.save(Settings())
    assert store.load() == Settings() and store.notice is None

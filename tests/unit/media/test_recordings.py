"""A recording measured from its file: whole frames present on disk, within what the header declares."""

from __future__ import annotations

from pathlib import Path

from b2bua.media.recordings import inspect_recording
from b2bua.media.sounds import write_notes


def test_a_complete_file_is_its_frames(tmp_path: Path) -> None:
    path = tmp_path / "m.wav"
    write_notes(path, ((440, 1.25),))
    rec = inspect_recording(path)
    assert (rec.seconds, rec.problem, rec.size) == (1.25, "", 44 + 2 * 10000)


def test_a_file_cut_mid_frame_counts_whole_frames_only(tmp_path: Path) -> None:
    path = tmp_path / "m.wav"
    write_notes(path, ((440, 1.0),))
    with path.open("r+b") as f:
        f.truncate(44 + 8001)  # 4000 frames and a half
    assert inspect_recording(path).seconds == 0.5


def test_missing_and_broken_files_say_why(tmp_path: Path) -> None:
    assert "could not be read" in inspect_recording(tmp_path / "nope.wav").problem
    (tmp_path / "short.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    assert inspect_recording(tmp_path / "short.wav").problem == "the recording has no complete WAV header"

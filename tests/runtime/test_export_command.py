"""``occlupose export``: bad requests are one line on stderr and a non-zero exit."""

from app.cli import main


def test_int8_without_calibration_frames_is_one_line(capsys):
    assert main(["export", "--precision", "int8"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--calibration" in err[0]


def test_missing_calibration_source_is_one_line(tmp_path, capsys):
    assert main(["export", "--precision", "int8", "--calibration", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]

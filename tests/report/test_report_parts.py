"""The report's building blocks: captures, terminal rendering, capture selection, diagrams, formatting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from docs.report import capture, diagram, facts, narrative, paths, terminal


def test_recorder_keeps_real_output_and_exit_status(tmp_path: Path) -> None:
    recorder = capture.Recorder(cwd=tmp_path)
    ok = recorder.run("echo hello; echo oops >&2")
    failed = recorder.run("exit 3")
    assert ok.output == "hello\noops\n" and ok.exit_code == 0
    assert failed.exit_code == 3
    saved = capture.save(recorder.capture("01_x", "X", "LOCAL"), tmp_path)
    again = capture.Capture.from_file(saved)
    assert [s.command for s in again.steps] == ["echo hello; echo oops >&2", "exit 3"]
    assert recorder.steps == []  # capture() starts a fresh session


def test_recorder_scrubs_secrets_passed_by_environment(tmp_path: Path) -> None:
    secret = "s3cr3t-key-value-123"
    recorder = capture.Recorder(cwd=tmp_path, env={"API_KEY": secret}, secrets=[secret])
    step = recorder.run('echo "key is $API_KEY"')
    assert secret not in step.output
    assert step.output == f"key is {capture.REDACTED}\n"
    assert "$API_KEY" in step.command


def test_recorder_times_out_instead_of_hanging(tmp_path: Path) -> None:
    step = capture.Recorder(cwd=tmp_path).run("echo started; sleep 5", timeout=0.5)
    assert step.exit_code == 124
    assert "timed out" in step.output


def test_ansi_colours_and_bold_become_spans() -> None:
    spans = terminal.parse_ansi("plain \x1b[1;31mred bold\x1b[0m back\x1b[2K")
    assert [s.text for s in spans] == ["plain ", "red bold", " back"]
    assert spans[1].bold and spans[1].colour == terminal.PALETTE[31]
    assert not spans[2].bold and spans[2].colour == terminal.FOREGROUND


def test_terminal_png_grows_with_content_and_marks_cut_output(tmp_path: Path) -> None:
    short = terminal.render_session([terminal.Step("echo hi", "hi\n")], "LOCAL run", tmp_path / "a.png")
    long_output = "\n".join(f"line {i}" for i in range(terminal.MAX_OUTPUT_LINES + 10))
    tall = terminal.render_session([terminal.Step("seq", long_output, 1)], "LOCAL run", tmp_path / "b.png")
    with Image.open(short) as a, Image.open(tall) as b:
        assert b.height > a.height * 5
        assert a.width >= 1000  # readable when scaled to the page width
    rows = terminal._session_rows([terminal.Step("seq", long_output, 1)], "$ ", terminal.COLUMNS)
    texts = ["".join(s.text for s in row) for row in rows]
    assert "... 10 more lines (full text in the capture file)" in texts
    assert texts[-1] == "[exit status 1]"


def _write_capture(directory: Path, name: str) -> None:
    recorder = capture.Recorder(cwd=directory)
    recorder.run("true")
    capture.save(recorder.capture(name, name, "LOCAL"), directory)


def test_cloud_captures_win_over_local_ones(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    _write_capture(tmp_path / "local", "01_local")
    assert facts.select_captures(tmp_path)[0] == "LOCAL"
    (tmp_path / "cloud").mkdir()
    _write_capture(tmp_path / "cloud", "01_cloud")
    where, chosen = facts.select_captures(tmp_path)
    assert where == "AWS" and [c.name for c in chosen] == ["01_cloud"]


def test_missing_captures_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(facts.ReportInputError, match="no terminal captures"):
        facts.select_captures(tmp_path)


def test_local_wording_never_claims_an_aws_deployment() -> None:
    local = " ".join(narrative.run_label("LOCAL").values())
    assert "No AWS deployment was made" in local
    assert "recorded against a real AWS deployment" not in local


def test_missing_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(facts.ReportInputError, match="run 'make train'"):
        facts.read_manifest(tmp_path / "manifest.json")


def test_incomplete_manifest_names_the_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"model": {"name": "x"}}))
    with pytest.raises(facts.ReportInputError, match="'threshold'"):
        facts.model_facts(facts.read_manifest(path))


def test_metric_format_is_four_decimals() -> None:
    assert facts.fmt_metric(0.912345) == "0.9123"
    assert facts.fmt_metric(None) == "n/a"
    assert facts.fmt_count(32561) == "32,561"


def test_architecture_diagram_is_drawn_with_config_values(tmp_path: Path) -> None:
    settings = diagram.settings_from_config()
    png = diagram.draw_aws_architecture(tmp_path / "arch.png", settings)
    with Image.open(png) as image:
        assert image.width > 1000 and image.height > 600
    local = diagram.draw_local_architecture(tmp_path / "local.png")
    assert local.stat().st_size > 10_000
    # the local diagram used to print at ~5 pt; both now keep every label at 8 pt or more on paper
    for drawn in (png, local):
        assert diagram.printed_font_points(drawn) >= 8.0, (drawn.name, diagram.printed_font_points(drawn))


def test_a_diagram_node_keeps_its_label_below_the_icon_and_edges_on_the_icon() -> None:
    label = diagram.node_label("/icons/s3.png", "S3: model.tar.gz\nline 2")
    # two table rows: the icon cell (the edge port, fixed size) and the text; they cannot overlap
    assert label.count("<TR>") == 2
    icon_row, text_row = label.split("</TR>")[:2]
    assert f'PORT="{diagram.ICON_PORT}"' in icon_row and "<IMG" in icon_row and "S3" not in icon_row
    assert "S3: model.tar.gz<BR/>line 2" in text_row and "<IMG" not in text_row


def _capture_with(step: terminal.Step) -> capture.Capture:
    return capture.Capture(
        name="04_throttling", title="t", where="LOCAL", recorded_at="now", host="h", steps=(step,)
    )


def test_a_capture_whose_output_contradicts_its_expected_status_fails_the_build() -> None:
    # the p.17 defect: the caption said the request after the 429s passes, the capture showed a 429
    wrong = terminal.Step('curl "$API/health"', '{"message": "Too Many Requests"}  [HTTP 429]\n', 0, 200)
    with pytest.raises(
        capture.CaptureMismatchError, match="expects HTTP 200 but the recorded output shows 429"
    ):
        _capture_with(wrong).check()
    unchecked = terminal.Step('curl "$API/health"', '{"status": "ok"}  [HTTP 200]\n', 0)
    with pytest.raises(capture.CaptureMismatchError, match="carries no expected status"):
        _capture_with(unchecked).check()
    _capture_with(terminal.Step('curl "$API/health"', '{"status": "ok"}  [HTTP 200]\n', 0, 200)).check()


def test_the_recorder_refuses_an_outcome_other_than_the_expected_one(tmp_path: Path) -> None:
    recorder = capture.Recorder(cwd=tmp_path)
    with pytest.raises(capture.CaptureMismatchError, match="expects HTTP 200"):
        recorder.run("echo '  [HTTP 429]'", expect_status=200)


def test_every_saved_capture_shows_what_its_caption_relies_on() -> None:
    for path in sorted((paths.CAPTURES / "local").glob("*.json")):
        saved = capture.Capture.from_file(path)
        saved.check()
        for step in saved.steps:
            if capture.shown_status(step) is not None:
                assert step.expected_status == capture.shown_status(step), (path.name, step.command)
    throttling = capture.Capture.from_file(paths.CAPTURES / "local" / "04_throttling.json")
    assert "passes again (200)" in throttling.notes
    assert throttling.steps[-2].expected_status == 200


def test_eda_figures_are_print_resolution_and_print_at_their_own_size() -> None:
    from pipeline import eda

    pngs = sorted(paths.EDA_DIR.glob("*.png"))
    assert len(pngs) >= 6 and not (paths.EDA_DIR / "categorical_rates.png").exists()  # 7 panels split in two
    for png in pngs:
        with Image.open(png) as image:
            dpi = image.info["dpi"][0]
            assert dpi >= 199.9, (png.name, dpi)
            # no wider than the text width, so the report never shrinks it and its fonts stay >= 8 pt
            assert image.width / dpi <= eda.PRINT_WIDTH_INCHES + 0.01, png.name
        assert facts.Figure(png, "").print_width_mm == round(min(178.0, image.width / dpi * 25.4), 1)
    assert min(v for v in eda.STYLE.values()) >= 8.0 and eda.MIN_FONT_POINTS >= 8.0


def test_eda_findings_use_arrows_that_cannot_break_across_lines() -> None:
    assert "->" not in (paths.EDA_DIR / "summary.md").read_text()

"""benchmarks/more_epochs.py: the later epochs predicted from the first ones (as literature.md's
"levels off at" and "more epochs" do), set beside the measured ones; checked by hand."""

from __future__ import annotations

import json
import math

import pytest

from helpers import load_script


def _script():
    return load_script("benchmarks/more_epochs.py")


def test_a_perplexity_is_predicted_in_nats_with_the_changes_shrinking_by_their_last_ratio(tmp_path):
    # ln PPL 10, 9, 8.5: changes -1, -0.5, ratio 1/2; then -0.25, -0.125 ... towards 8
    values = [math.exp(v) for v in (10.0, 9.0, 8.5, 8.3, 8.2)]
    found = _script().backtest(values, known=3, log_scale=True)
    assert found["epochs"] == [4, 5] and found["measured"] == values[3:]
    assert found["shrinking"] == pytest.approx([math.exp(8.25), math.exp(8.125)])
    assert found["constant"] == pytest.approx([math.exp(8.0), math.exp(7.5)])
    assert found["levels_off"] == pytest.approx(math.exp(8.0))
    # not in nats (a reconstruction): the same rule on the values themselves
    rec = _script().backtest([100.0, 90.0, 85.0, 80.0], known=3, log_scale=False)
    assert rec["shrinking"] == pytest.approx([82.5]) and rec["levels_off"] == pytest.approx(80.0)
    # changes that grow: no limit, no shrinking path
    grow = _script().backtest([100.0, 99.0, 97.0, 90.0], known=3, log_scale=False)
    assert grow["shrinking"] == [] and grow["levels_off"] is None


def test_the_script_writes_json_and_table_and_names_a_short_history(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    history = [
        {"epoch": e + 1, "valid_ppl_word": v} for e, v in enumerate([600.0, 500.0, 450.0, 430.0])
    ]
    (run / "history.json").write_text(json.dumps(history))
    out = tmp_path / "more.json"
    assert _script().main([str(run), "--known", "3", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["measured"] == [430.0] and written["metric"] == "ppl_word"
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"  # the figure beside the table
    table = out.with_suffix(".md").read_text()
    r = math.log(450 / 500) / math.log(500 / 600)
    assert f"| 4 | 430.00 | {450 * (450 / 500) ** r:.2f} | {450 * 450 / 500:.2f} |" in table
    assert _script().main([str(run), "--known", "4", "--out", str(out)]) == 2
    assert "history.json: need 3 <= known < 4 epochs" in capsys.readouterr().err

"""The cost plan (./reproduce.sh --plan): a linear cost model over measured unit costs, and a
command that measures and writes plan.md without running anything."""

from __future__ import annotations

import json

import pytest

from t5vae.config import params as P
from t5vae.evaluation.metrics import METRIC_KEYS
from t5vae.grid import reproduce
from t5vae.grid.cost import Costs, combine, estimate, padded_tokens, representative_step
from t5vae.grid.jobs import plan_against_measured, write_plan_check
from t5vae.report.results import result_files, write_results


def test_the_estimate_multiplies_unit_costs_by_the_grids_work():
    profile = P.load_profile("smoke")  # train 200, valid 40, test 40, batch 32; epochs 1 and 2
    costs = Costs(phase1_step=2.0, phase2_step=3.0, valid_sentence=0.1, test_sentence=0.5,
                  decode_sentence=0.25, pretrain_step=1.0, run_overhead=7.0, epoch_checkpoint=0.5,
                  peak_rss_mb=1.0, peak_cuda_mb=None)  # fmt: skip
    steps = 7  # ceil(200 / 32) per epoch
    test = 40 * (0.5 + 0.25) + 10 * 0.25  # K-sample evaluation + reconstructions, prior samples
    # per epoch: validation and checkpoints; per run: test evaluation and the notebooks' overhead
    phase1 = 1 * steps * 2.0 + 1 * (40 * 0.1 + 0.5) + test + 7.0
    phase2 = 2 * steps * 3.0 + 2 * (40 * 0.1 + 0.5) + test + 7.0
    sizes = {"train": 200, "valid": 40, "test": 40}  # the corpus with the profile's caps
    got = estimate(profile, costs, n_phase1=3, n_phase2=5, seeds=2, jobs=2, sizes=sizes)
    assert got["base"] == pytest.approx(30 * 1.0)
    assert got["phase1"] == pytest.approx(2 * 3 * phase1)
    assert got["phase2"] == pytest.approx(2 * 5 * phase2)
    assert got["wall"] == pytest.approx(30 + (2 * 3 * phase1 + 2 * 5 * phase2) / 2)
    assert got["phase2_test"] == pytest.approx(2 * 5 * test)  # the test set's share, reported
    # training alone: the run less its test evaluation and the notebooks' overhead
    assert got["phase2_train"] == pytest.approx(2 * 5 * (phase2 - test - 7.0))


def test_timing_sets_the_plan_beside_the_time_the_runs_measured(tmp_path):
    """Planned minutes (plan.json) against the results files' train_time_s / eval_time_s and the
    base's pretrain.json, over the runs that finished; ratio measured / planned."""
    args = reproduce.parse_args(["--profile", "smoke", "--output-root", str(tmp_path), "--seeds", "0",
                                 "--phase1-variants", "max_pnone_frozen",
                                 "--techniques", "l0.5_pnone,vanilla"])  # fmt: skip
    _, jobs = reproduce.expand_grid(args)
    results_dir = tmp_path / "results" / "smoke"
    results_dir.mkdir(parents=True)
    assert not plan_against_measured(results_dir, jobs)  # no plan: no section
    minutes = {
        "base": 10,
        "phase1_train": 40,
        "phase1_test": 5,
        "phase2_train": 100,
        "phase2_test": 20,
    }
    plan = {
        "jobs": 2,
        "written": "then",
        "datasets": {"builtin": {k: 60 * v for k, v in minutes.items()}},
    }
    (results_dir / "plan.json").write_text(json.dumps(plan))
    base = jobs[0].spec.base_dir / "t5"
    base.mkdir(parents=True)
    (base / "pretrain.json").write_text(json.dumps({"wall_time_s": 15 * 60}))
    phase1 = next(j for j in jobs if j.spec.stage == "phase1")
    phase2 = [j for j in jobs if j.spec.stage == "phase2"]
    assert len(phase2) == 2
    for job, train_min, eval_min in (
        (phase1, 20, 5),
        (phase2[0], 60, 30),
    ):  # one phase-2 run of two
        write_results(job.spec, dict.fromkeys(METRIC_KEYS, 1.0), train_time_s=60 * train_min,
                      eval_time_s=60 * eval_min)  # fmt: skip
    lines = "\n".join(plan_against_measured(results_dir, jobs))
    assert "| builtin | base | 1 of 1 | 10.0 | 15.0 | 1.50 | - | - | - |" in lines
    assert "| builtin | phase1 | 1 of 1 | 40.0 | 20.0 | 0.50 | 5.0 | 5.0 | 1.00 |" in lines
    # half the phase-2 runs finished: half the plan's stage total
    assert "| builtin | phase2 | 1 of 2 | 50.0 | 60.0 | 1.20 | 10.0 | 30.0 | 3.00 |" in lines
    path = write_plan_check(results_dir, jobs)
    assert path.read_text().startswith("# Planned against measured: smoke")
    assert "| builtin | phase2 | 1 of 2 |" in path.read_text()


def test_every_grid_call_writes_the_plan_check_resumed_or_collected(tmp_path):
    """--collect (as a grid finished over several calls ends) writes plan_check.md from every
    finished run, not only those of the last call; no plan, no file."""
    argv = ["--profile", "smoke", "--output-root", str(tmp_path), "--seeds", "0", "--techniques",
            "vanilla", "--phase1-variants", "max_pnone_frozen", "--collect", "--no-tables"]  # fmt: skip
    _, jobs = reproduce.expand_grid(reproduce.parse_args(argv))
    results_dir = tmp_path / "results" / "smoke"
    results_dir.mkdir(parents=True)
    assert reproduce.main(argv) == 0 and not (results_dir / "plan_check.md").exists()
    plan = {"jobs": 1, "written": "then", "datasets": {"builtin": {"base": 60, "phase1_train": 60,
            "phase1_test": 60, "phase2_train": 60, "phase2_test": 60}}}  # fmt: skip
    (results_dir / "plan.json").write_text(json.dumps(plan))
    for job in jobs:
        write_results(
            job.spec, dict.fromkeys(METRIC_KEYS, 1.0), train_time_s=90.0, eval_time_s=30.0
        )
    assert reproduce.main(argv) == 0
    check = (results_dir / "plan_check.md").read_text()
    assert "| builtin | phase1 | 1 of 1 | 1.0 | 1.5 | 1.50 | 1.0 | 0.5 | 0.50 |" in check


def test_plan_measures_and_writes_the_plan_without_running_anything(tmp_path, capsys):
    """With --jobs 2 the batches are timed in two processes at once (measure_side_by_side)."""
    code = reproduce.main(["--profile", "smoke", "--plan", "--output-root", str(tmp_path), "--jobs", "2",
                           "--phase1-variants", "max_pnone_frozen", "--techniques", "l0.5_pnone"])  # fmt: skip
    assert code == 0
    plan = (tmp_path / "results" / "smoke" / "plan.md").read_text()
    assert plan.startswith("# Plan: smoke on cpu, 2 runs at a time")
    assert "| builtin | phase1 |" in plan and "| builtin | phase2 |" in plan
    assert "Estimated wall time of the grid" in plan
    assert not result_files(tmp_path / "results"), "--plan ran a run"
    kept = json.loads((tmp_path / "results" / "smoke" / "plan.json").read_text())
    assert kept["jobs"] == 2 and {"base", "phase1_train", "phase2_test"} <= set(
        kept["datasets"]["builtin"]
    )
    assert "Estimated wall time" in capsys.readouterr().out


def test_a_timed_step_is_scaled_to_the_epochs_mean_padded_tokens():
    lengths = [3, 5, 7, 2]
    assert padded_tokens([0, 2], lengths) == 2 * 7  # collate pads to the batch's longest
    # timed batches twice as long as the epoch's mean batch: the mean step takes half the time
    assert representative_step(2.0, [200, 200], 100.0) == (1.0, 2.0)
    assert representative_step(2.0, [50, 150], 100.0) == (2.0, 1.0)


def test_costs_measured_side_by_side_combine_as_mean_times_and_largest_memory():
    def costs(t: float, rss: float, cuda):
        return Costs(phase1_step=t, phase2_step=2 * t, valid_sentence=t, test_sentence=t,
                     decode_sentence=t, pretrain_step=t, run_overhead=t, epoch_checkpoint=t,
                     peak_rss_mb=rss, peak_cuda_mb=cuda)  # fmt: skip

    got = combine([costs(1.0, 500.0, None), costs(3.0, 700.0, None)])
    assert got == costs(2.0, 700.0, None)
    assert combine([costs(1.0, 1.0, 10.0), costs(1.0, 1.0, 30.0)]).peak_cuda_mb == 30.0


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_jobs_must_be_a_whole_number_of_at_least_one(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        reproduce.parse_args(["--jobs", value])
    assert exit_.value.code == 2
    assert "--jobs: expected a whole number >= 1" in capsys.readouterr().err


def test_offline_paper_plan_without_a_base_config_is_one_line_naming_what_to_pass(
    tmp_path, monkeypatch, capsys
):
    """No network, no --base-config, no $T5VAE_SHARED_DIR: one error line, exit 2, instead of
    the Hub's five retries and a transformers traceback."""
    import huggingface_hub

    from t5vae.grid import dryrun

    ptb = tmp_path / "data" / "ptb"
    ptb.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        (ptb / f"{split}.txt").write_text("the cat sat on the mat .\na dog ran .\n")
    monkeypatch.delenv("T5VAE_SHARED_DIR", raising=False)
    monkeypatch.setattr(dryrun, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    code = reproduce.main(["--profile", "paper", "--plan", "--datasets", "ptb",
                           "--output-root", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: the base model 't5-small' is not on this machine")
    assert "pass --base-config DIR" in err[0] and "T5VAE_SHARED_DIR" in err[0]
    assert not list((tmp_path / "out").rglob("plan.md"))

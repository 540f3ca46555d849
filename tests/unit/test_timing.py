"""timing.csv / timing.md count, for a run resumed by this call, only the epochs this call trained."""

from __future__ import annotations

from t5vae.grid.jobs import this_call_training_s


def _record(starts: list[int], walls: list[float]) -> dict:
    history = [{"epoch": e + 1, "wall_time_s": w} for e, w in enumerate(walls)]
    trained_with = [{"from_epoch": s, "started": f"t{i}"} for i, s in enumerate(starts)]
    return {"history": history, "provenance": {"trained_with": trained_with}}


def test_a_resumed_run_counts_only_the_epochs_trained_since_its_last_start():
    # trained from scratch in one call: every epoch
    assert this_call_training_s(_record([0], [600.0, 550.0, 601.0])) == 1751.0
    # stopped after 2 epochs, resumed at epoch 2: the third epoch only (the notebook of this call
    # did not run the first two, so overhead = notebook time - this, not - all three)
    assert this_call_training_s(_record([0, 2], [704.0, 551.0, 601.0])) == 601.0
    # restarted from scratch after an attempt killed inside its first epoch: all epochs again
    assert this_call_training_s(_record([0, 0], [620.0, 652.0, 553.0])) == 1825.0
    # results written before trained_with existed: every epoch
    assert (
        this_call_training_s({"history": [{"epoch": 1, "wall_time_s": 5.0}], "provenance": {}})
        == 5.0
    )

"""Two-phase training: what each phase freezes, checkpoints, resume, divergence, early stopping."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
import torch

import t5vae.training.loop as training
from t5vae.model.objectives import Objective
from t5vae.model.vae import T5VAE
from t5vae.training.config import TrainConfig
from t5vae.training.loop import TrainingDiverged, train


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def changed(before, model, prefix):
    return [
        n
        for n, p in model.named_parameters()
        if n.startswith(prefix) and not torch.equal(before[n], p)
    ]


def unchanged(before, model, prefix):
    return [
        n for n, p in model.named_parameters() if n.startswith(prefix) and torch.equal(before[n], p)
    ]


OBJECTIVE_KEYS = {f.name for f in fields(Objective)}


def run(model, tokenizer, corpus, tmp_path, **kw):
    """train() on 48 sentences; keyword arguments of Objective go into the config's objective."""
    kw = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "progress": False, "select_by": "rec", **kw}
    objective = Objective(**{k: kw.pop(k) for k in list(kw) if k in OBJECTIVE_KEYS})
    return train(
        model,
        tokenizer,
        corpus.sentences[:48],
        corpus.sentences[48:64],
        TrainConfig(**kw, objective=objective),
        tmp_path,
    )


DECODER_SIDE = ("t5.decoder.", "latent_to_memory.")


@pytest.mark.parametrize("policy", ["frozen", "untied", "trainable"])
def test_phase1_freezes_the_decoder_and_nothing_else(
    make_model, tokenizer, builtin_corpus, tmp_path, policy
):
    model = make_model()
    before = snapshot(model)
    run(model, tokenizer, builtin_corpus, tmp_path, phase="phase1", phase1_embeddings=policy)
    after = dict(model.named_parameters())
    # decoder blocks, final norm, memory projection: untouched in every policy
    for prefix in ("t5.decoder.block.", "t5.decoder.final_layer_norm.", "latent_to_memory."):
        assert not changed(before, model, prefix), prefix
    # encoder blocks and the latent heads: all trained
    for prefix in ("t5.encoder.block.", "t5.encoder.final_layer_norm.", "to_mu.", "to_logvar."):
        assert not unchanged(before, model, prefix), prefix
    shared_changed = not torch.equal(before["t5.shared.weight"], after["t5.shared.weight"])
    lm_head = model.t5.lm_head.weight
    if policy == "frozen":  # the documented cost: the tied encoder embeddings stay frozen too
        assert not shared_changed and model.t5.encoder.embed_tokens.weight is model.t5.shared.weight
    elif policy == "untied":  # the encoder's own copy trains; decoder embeddings and lm_head don't
        assert not shared_changed and lm_head is model.t5.shared.weight
        assert model.t5.encoder.embed_tokens.weight is not model.t5.shared.weight
        assert not torch.equal(model.t5.encoder.embed_tokens.weight, before["t5.shared.weight"])
        assert model.config.untied_encoder_embeddings
    else:  # trainable: the shared matrix (encoder + decoder input embeddings + lm_head) trains
        assert shared_changed


def test_phase1_without_freezing_trains_the_decoder(
    make_model, tokenizer, builtin_corpus, tmp_path
):
    model = make_model()
    before = snapshot(model)
    run(model, tokenizer, builtin_corpus, tmp_path, phase="phase1", freeze_decoder=False)
    assert not [n for n in unchanged(before, model, "t5.decoder.block.1.") if ".layer.1." not in n]
    assert changed(before, model, "latent_to_memory.")


def test_phase2_trains_everything_with_kl(make_model, tokenizer, builtin_corpus, tmp_path):
    model = make_model()
    before = snapshot(model)
    res = run(model, tokenizer, builtin_corpus, tmp_path, phase="phase2", kl_threshold=0.5, denoise_prob=0.15,
              kl_schedule={"kind": "constant"})  # fmt: skip
    # everything trains except the decoder's cross-attention, which memory injection never runs
    stale = [n for n in unchanged(before, model, "") if "relative_attention_bias" not in n]
    assert stale and all("decoder" in n and ".layer.1." in n for n in stale), stale
    row = res.history[-1]
    assert row["kl_weight"] == 1.0 and row["train_loss"] > row["train_rec"]
    for key in ("valid_rec", "valid_kl", "valid_mi", "valid_au", "valid_nll"):
        assert key in row


def test_checkpoints_and_history_are_written(make_model, tokenizer, builtin_corpus, tmp_path):
    model = make_model()
    res = run(model, tokenizer, builtin_corpus, tmp_path, phase="phase2", epochs=2)
    hist = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2]
    best = T5VAE.from_pretrained(res.best_dir)
    last = T5VAE.from_pretrained(res.last_dir)
    for (n, a), b in zip(last.state_dict().items(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=n)
    assert best.config == model.config


def test_early_stopping_after_patience(make_model, tokenizer, builtin_corpus, tmp_path):
    res = run(make_model(), tokenizer, builtin_corpus, tmp_path, phase="phase2", epochs=6, lr=0.0,
              patience=2, select_by="neg_elbo", kl_schedule={"kind": "constant"}, sample_z=False)  # fmt: skip
    assert res.stopped_early and len(res.history) == 3


def test_divergence_stops_with_step_and_term(make_model, tokenizer, builtin_corpus, tmp_path):
    model = make_model()
    with torch.no_grad():
        model.to_logvar.bias.fill_(200.0)  # exp(logvar) overflows: KL is inf
    with pytest.raises(TrainingDiverged, match=r"step 0 .*non-finite term: kl"):
        run(model, tokenizer, builtin_corpus, tmp_path, phase="phase2", kl_schedule={"kind": "constant"},
            sample_z=False)  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"step 0 .*non-finite term: rec"):
        run(model, tokenizer, builtin_corpus, tmp_path / "b", phase="phase2")  # z = mu + inf * eps


def test_resume_mid_epoch_matches_an_uninterrupted_run(
    make_model, tokenizer, builtin_corpus, tmp_path, monkeypatch
):
    kw = dict(phase="phase2", epochs=2, checkpoint_every=2, denoise_prob=0.3, kl_threshold=0.1)
    ref_model = make_model()
    ref_model.train()
    ref = run(ref_model, tokenizer, builtin_corpus, tmp_path / "ref", **kw)

    real_loss, calls = training.vae_loss, {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # in epoch 2 (3 steps per epoch), after the step-4 checkpoint
            raise KeyboardInterrupt
        return real_loss(*a, **k)

    monkeypatch.setattr(training, "vae_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(make_model(), tokenizer, builtin_corpus, tmp_path / "cut", **kw)
    monkeypatch.setattr(training, "vae_loss", real_loss)
    resumed_model = make_model(seed=123)  # different init: everything must come from the checkpoint
    resumed = run(resumed_model, tokenizer, builtin_corpus, tmp_path / "cut", **kw)
    for (n, a), b in zip(
        ref_model.state_dict().items(), resumed_model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=n)

    def strip(h):
        return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in h]

    assert strip(resumed.history) == strip(ref.history)


def test_resume_refuses_a_different_config(make_model, tokenizer, builtin_corpus, tmp_path):
    run(make_model(), tokenizer, builtin_corpus, tmp_path, phase="phase2")
    with pytest.raises(ValueError, match="different training config"):
        run(make_model(), tokenizer, builtin_corpus, tmp_path, phase="phase2", kl_threshold=3.0)


def test_config_validation():
    with pytest.raises(ValueError, match="kl_threshold"):
        TrainConfig(objective=Objective(kl_threshold=-1))
    with pytest.raises(ValueError, match="denoise_prob"):
        TrainConfig(objective=Objective(denoise_prob=1.0))
    with pytest.raises(ValueError, match="phase1_embeddings"):
        TrainConfig(phase1_embeddings="shared")


def test_dataloader_workers_and_token_cache_do_not_change_results(
    make_model, tokenizer, builtin_corpus, tmp_path
):
    kw = dict(phase="phase2", epochs=2, denoise_prob=0.3)
    ref_model = make_model()
    ref_model.train()
    ref = run(ref_model, tokenizer, builtin_corpus, tmp_path / "ref", **kw)
    for name, extra in {"workers": {"num_workers": 2},
                        "cache": {"cache_dir": str(tmp_path / "tok")}}.items():  # fmt: skip
        model = make_model()
        model.train()
        got = run(model, tokenizer, builtin_corpus, tmp_path / name, **kw, **extra)
        for (n, a), b in zip(
            ref_model.state_dict().items(), model.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=f"{name}: {n}")
        assert [r["train_loss"] for r in got.history] == [r["train_loss"] for r in ref.history]
    assert list((tmp_path / "tok").glob("*/*.arrow")), "train and valid splits were cached"


def test_a_launch_that_accelerate_does_not_see_is_refused(
    make_model, tokenizer, builtin_corpus, tmp_path, monkeypatch
):
    """Under `accelerate launch` without GPUs and without ACCELERATE_USE_CPU, every process would
    train alone on whole batches and write the same checkpoints: refuse before training."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="ACCELERATE_USE_CPU=1"):
        run(make_model(), tokenizer, builtin_corpus, tmp_path, phase="phase2")
    assert not (tmp_path / "last").exists()


def test_a_checkpoint_without_a_newer_config_field_still_resumes(
    make_model, tokenizer, builtin_corpus, tmp_path
):
    """A field added to TrainConfig or Objective after a checkpoint was written counts as its
    default there: the run resumes; a field whose value really differs is still refused."""
    kw = dict(phase="phase2", epochs=2, checkpoint_every=1, kl_threshold=0.1)
    run(make_model(), tokenizer, builtin_corpus, tmp_path, **{**kw, "epochs": 1})
    path = tmp_path / "last" / training.TRAIN_STATE
    state = torch.load(path, weights_only=False)
    del state["config"]["weight_decay"], state["config"]["objective"]["sample_z"]  # "older code"
    state["config"]["epochs"], state["finished"] = 2, False
    torch.save(state, path)
    res = run(make_model(), tokenizer, builtin_corpus, tmp_path, **kw)
    assert [r["epoch"] for r in res.history] == [1, 2]
    state = torch.load(path, weights_only=False)
    del state["config"]["objective"]["sample_z"]
    state["finished"] = False
    torch.save(state, path)
    with pytest.raises(
        ValueError, match=r"different training config \(epochs, objective\.sample_z\)"
    ):
        run(
            make_model(),
            tokenizer,
            builtin_corpus,
            tmp_path,
            **{**kw, "epochs": 3, "sample_z": False},
        )


def test_objective_modules_are_checkpointed_and_resume_exactly(
    make_model, tokenizer, builtin_corpus, tmp_path, monkeypatch
):
    """The bag-of-words head lives in the training state (not in the model): an interrupted run
    resumes it exactly, and its term is logged without training.py knowing its name."""
    kw = dict(phase="phase2", epochs=2, checkpoint_every=2, bow_weight=1.0, word_dropout=0.2)
    ref_model = make_model()
    ref = run(ref_model, tokenizer, builtin_corpus, tmp_path / "ref", **kw)
    assert all("train_bow" in row for row in ref.history)
    real_loss, calls = training.vae_loss, {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_loss(*a, **k)

    monkeypatch.setattr(training, "vae_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(make_model(), tokenizer, builtin_corpus, tmp_path / "cut", **kw)
    monkeypatch.setattr(training, "vae_loss", real_loss)
    state = torch.load(tmp_path / "cut" / "last" / training.TRAIN_STATE, weights_only=False)
    assert {k.split(".")[0] for k in state["extra"]} == {"bow"}
    resumed_model = make_model(seed=123)
    resumed = run(resumed_model, tokenizer, builtin_corpus, tmp_path / "cut", **kw)
    for (n, a), b in zip(
        ref_model.state_dict().items(), resumed_model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=n)
    assert [r["train_bow"] for r in resumed.history] == [r["train_bow"] for r in ref.history]
    assert not any(
        "bow" in k for k in T5VAE.from_pretrained(tmp_path / "cut" / "best").state_dict()
    )


def test_phase1_memory_projection_can_train_with_the_decoder_frozen(
    make_model, tokenizer, builtin_corpus, tmp_path
):
    """memory_projection "trainable": the latent-to-memory projection learns in phase 1 while the
    decoder stays frozen; "frozen" (the released code) keeps it as initialised."""
    for setting, trains in (("trainable", True), ("frozen", False)):
        model = make_model()
        before = snapshot(model)
        run(
            model,
            tokenizer,
            builtin_corpus,
            tmp_path / setting,
            phase="phase1",
            memory_projection=setting,
        )
        assert bool(changed(before, model, "latent_to_memory.")) == trains, setting
        assert not changed(before, model, "t5.decoder.block."), setting
        assert changed(before, model, "to_mu."), setting


def test_early_stopping_on_neg_elbo_needs_a_large_enough_improvement(
    make_model, tokenizer, builtin_corpus, tmp_path
):
    """patience counts epochs whose validation -ELBO did not fall by min_improvement (relative);
    best/ still follows every improvement."""
    kw = dict(
        phase="phase2",
        epochs=4,
        lr=1e-3,
        select_by="neg_elbo",
        patience=1,
        kl_schedule={"kind": "constant"},
    )  # (patience waits for a warm-up: next test)
    strict = run(
        make_model(), tokenizer, builtin_corpus, tmp_path / "strict", min_improvement=0.9, **kw
    )
    assert strict.stopped_early and len(strict.history) == 2
    elbo = [r["valid_neg_elbo"] for r in strict.history]
    if elbo[1] < elbo[0]:  # a small improvement: saved as best, but not enough to go on
        best = T5VAE.from_pretrained(strict.best_dir).state_dict()
        last = T5VAE.from_pretrained(strict.last_dir).state_dict()
        assert all(torch.equal(best[k], last[k]) for k in best)
    loose = run(make_model(), tokenizer, builtin_corpus, tmp_path / "loose", min_improvement=0.0,
                **{**kw, "patience": 4})  # fmt: skip
    assert not loose.stopped_early and len(loose.history) == 4


def test_patience_counts_only_epochs_after_the_kl_warmup(
    make_model, tokenizer, builtin_corpus, tmp_path
):
    """With beta still rising, an epoch without enough improvement does not count towards
    patience: with a warm-up over 3 of 6 epochs and lr 0 (no epoch improves on another),
    training stops one epoch after the first that ends with beta at 1, not after the first."""
    res = run(make_model(), tokenizer, builtin_corpus, tmp_path, phase="phase2", epochs=6, lr=0.0,
              patience=1, select_by="neg_elbo", sample_z=False,
              kl_schedule={"kind": "linear", "warmup_ratio": 0.5})  # fmt: skip
    weights = [r["kl_weight"] for r in res.history]
    assert res.stopped_early and len(res.history) == 5, weights
    assert weights[-2] == 1.0 and weights[-3] < 1.0


@pytest.mark.parametrize("after_warmup", [True, False])
def test_best_is_chosen_among_the_epochs_after_the_warmup(
    make_model, tokenizer, builtin_corpus, tmp_path, monkeypatch, after_warmup
):
    """select_after_warmup: best/ is the epoch with the lowest validation -ELBO among those that
    end with beta at 1 (False: among all epochs). The validation -ELBO is scripted (1, 5, 4, 3 over
    4 epochs, the first two inside the warm-up): after the warm-up best/ is epoch 4, the last (its
    weights are last/'s); among all epochs it is epoch 1."""
    scripted = iter([1.0, 5.0, 4.0, 3.0])
    monkeypatch.setattr(training, "evaluate", lambda *a, **k: {"neg_elbo": next(scripted)})
    res = run(make_model(), tokenizer, builtin_corpus, tmp_path, phase="phase2", epochs=4,
              lr=1e-3, select_by="neg_elbo", select_after_warmup=after_warmup,
              kl_schedule={"kind": "linear", "warmup_ratio": 0.5})  # fmt: skip
    assert [r["valid_neg_elbo"] for r in res.history] == [1.0, 5.0, 4.0, 3.0]
    assert [r["kl_weight"] < 1.0 for r in res.history] == [True, True, False, False]
    best = T5VAE.from_pretrained(res.best_dir).state_dict()
    last = T5VAE.from_pretrained(res.last_dir).state_dict()
    assert all(torch.equal(best[k], last[k]) for k in best) == after_warmup


def test_tensorboard_tracking_writes_every_term_and_metric(
    make_model, tokenizer, builtin_corpus, tmp_path
):
    """log_with tensorboard (accelerate's tracker): per step every loss term and the KL weight,
    per epoch every validation metric, and the run's parameters as hyperparameters."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    res = run(make_model(), tokenizer, builtin_corpus, tmp_path, phase="phase2", epochs=2, bow_weight=0.5,
              log_with="tensorboard", tracking_dir=str(tmp_path / "tb"), run_name="smoke-run")  # fmt: skip
    events = sorted((tmp_path / "tb" / "smoke-run").rglob("events.out.tfevents*"))
    assert events
    scalars = {}
    for path in events:
        acc = EventAccumulator(str(path))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars[tag] = [e.value for e in acc.Scalars(tag)]
    steps = res.history[-1]["step"]
    for term in ("loss", "rec", "kl", "kl_term", "bow", "kl_weight"):
        assert len(scalars[f"train/{term}"]) == steps, term
    for key in ("rec", "kl", "neg_elbo", "mi", "au", "nll"):
        assert scalars[f"valid/{key}"] == pytest.approx([r[f"valid_{key}"] for r in res.history]), (
            key
        )
    hparams = list((tmp_path / "tb" / "smoke-run").rglob("hparams.yml"))
    assert hparams and "train/objective/bow_weight: 0.5" in hparams[0].read_text()

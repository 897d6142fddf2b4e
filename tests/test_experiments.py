"""The paper's experiments at --scale=small: they run end to end and their
outputs hold the properties the paper claims where those hold by construction."""

import csv
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tf_vmfvae import config
from tf_vmfvae.experiments import common
from tf_vmfvae.experiments import kl_geometry

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def geometry(tmp_path_factory):
  output_dir = tmp_path_factory.mktemp("kl_geometry")
  kl_geometry.run(output_dir, "small")
  with open(output_dir / "kl_geometry.csv") as f:
    rows = [{k: (v if k == "distribution" else float(v)) for k, v in row.items()}
            for row in csv.DictReader(f)]
  return output_dir, rows


def test_kl_geometry_writes_its_csv_and_figure(geometry):
  output_dir, rows = geometry
  assert len(rows) == 2 * len(kl_geometry.DIMS) * len(kl_geometry.SETTINGS["small"][0])
  _assert_drawn(output_dir / "kl_geometry.png")


def test_kl_and_cosine_grow_with_kappa(geometry):
  _, rows = geometry
  for distribution in ("vmf", "power_spherical"):
    for dim in kl_geometry.DIMS:
      points = [r for r in rows if r["distribution"] == distribution and r["dim"] == dim]
      assert np.all(np.diff([r["kl"] for r in points]) > 0)
      assert np.all(np.diff([r["mean_cosine"] for r in points]) > 0)
  # Fig. 3: a larger d needs a larger kappa for the same spread.
  vmf50 = [r["mean_cosine"] for r in rows if r["distribution"] == "vmf" and r["dim"] == 50]
  vmf100 = [r["mean_cosine"] for r in rows if r["distribution"] == "vmf" and r["dim"] == 100]
  assert np.all(np.asarray(vmf50) > np.asarray(vmf100))


def test_sampled_cosines_agree_with_the_closed_forms(geometry):
  """Within 4 standard errors each (32 comparisons: at 3 SE one would fail
  by chance 8 % of the time), and unbiased on average."""
  _, rows = geometry
  z = np.array([(r["sampled_mean_cosine"] - r["mean_cosine"]) / r["sampled_standard_error"]
                for r in rows])
  assert np.all(np.abs(z) < 4.0), z
  assert abs(z.mean()) < 3.0 / np.sqrt(len(z))


def test_the_binary_refuses_a_bad_scale_and_needs_an_output_dir(tmp_path):
  with pytest.raises(ValueError, match="`scale` must be one of"):
    kl_geometry.run(tmp_path, "huge")
  with pytest.raises(ValueError, match="`scale` must be one of"):
    collapse.run(tmp_path, "huge")  # Before anything is trained.
  run = subprocess.run([sys.executable, "-m", "tf_vmfvae.experiments.kl_geometry"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert run.returncode == 1 and "output_dir" in run.stderr
  assert common.SCALES == ("small", "full")
  run = subprocess.run([sys.executable, "-m", "tf_vmfvae.experiments.seeds",
                        f"--output_dir={tmp_path}", "--report_only"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert run.returncode == 1, run.stderr
  assert "No setting of seeds is recorded" in run.stderr.strip().splitlines()[-1]
  assert not (tmp_path / "runs_small").exists()


# -- Experiments that train: tiny models (configs/experiments_small.flags) on
# PTB. One runs folder for the whole module, so that experiments needing the
# same model (e.g. probing and bow_conditioning) share its run, as they do
# for a user.
from tf_vmfvae.experiments import best_kappa_bound  # pylint: disable=g-import-not-at-top
from tf_vmfvae.experiments import bow_conditioning  # pylint: disable=g-import-not-at-top
from tf_vmfvae.experiments import collapse  # pylint: disable=g-import-not-at-top
from tf_vmfvae.experiments import interpolation  # pylint: disable=g-import-not-at-top
from tf_vmfvae.experiments import kappa_sweep  # pylint: disable=g-import-not-at-top
from tf_vmfvae.experiments import learned_kappa  # pylint: disable=g-import-not-at-top
from tf_vmfvae.experiments import probing  # pylint: disable=g-import-not-at-top
from tf_vmfvae.experiments import seeds  # pylint: disable=g-import-not-at-top
from tf_vmfvae.experiments import word_swap  # pylint: disable=g-import-not-at-top
from tf_vmfvae.latent import kl  # pylint: disable=g-import-not-at-top

SMALL_LATENT_DIM = 8  # configs/experiments_small.flags


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory):
  return tmp_path_factory.mktemp("experiment_runs")


def _run(module, tmp_path, runs_dir, **kwargs):
  module.run(tmp_path, "small", runs_dir=runs_dir, num_threads=1, parallel=2, **kwargs)


def _assert_drawn(path):
  """A PNG of a real figure: a few hundred pixels a side, not blank."""
  import matplotlib.image  # pylint: disable=g-import-not-at-top
  image = matplotlib.image.imread(path)
  assert image.shape[0] > 200 and image.shape[1] > 200, image.shape
  ink = np.mean(np.any(image[..., :3] < 0.9, axis=-1))  # Pixels that are not white.
  assert ink > 0.01, f"{path} is nearly blank ({ink:.4f} of its pixels drawn)"


def _assert_rebuilds_from_its_rows(module, tmp_path):
  """With every setting recorded, the run directories are not needed: the
  experiment writes the same outputs from its rows and trains nothing."""
  name = module.__name__.rsplit(".", 1)[1]
  records = common.read_records(tmp_path / f"{name}_runs.csv")
  assert records and all(r["history"] for r in records)
  outputs = {p.name: p.read_text() for p in tmp_path.glob("*.csv")
             if not p.name.endswith("_runs.csv")}
  for output in outputs:
    (tmp_path / output).unlink()
  empty = tmp_path / "no_runs"
  _run(module, tmp_path, empty)
  assert not empty.exists() or not any(empty.iterdir())
  assert {p: (tmp_path / p).read_text() for p in outputs} == outputs


def test_best_kappa_bound_chooses_on_validation_and_trains_to_convergence(tmp_path,
                                                                         shared_runs):
  with pytest.raises(best_kappa_bound.SweepNotFinishedError, match="kappa = 5, 50 have no row"):
    _run(best_kappa_bound, tmp_path, shared_runs)
  # The sweep's Standard rows (only what the choice reads): kappa = 5 is best
  # on validation, 50 on test; validation must decide.
  standard = {kappa: s for name, latent, kappa, s in kappa_sweep.settings("small")
              if name == "standard" and latent == "vmf"}
  assert sorted(standard) == [5.0, 50.0]
  for kappa, valid, test in ((5.0, 90.0, 99.0), (50.0, 95.0, 80.0)):
    common.append_record(common.record_path(tmp_path, "kappa_sweep"),
                         {"setting": standard[kappa].name, "valid_nll": valid,
                          "test_nll": test, "history": []})
  _run(best_kappa_bound, tmp_path, shared_runs)
  rows = common.read_csv(tmp_path / "best_kappa_bound.csv")
  assert [r["recipe"] for r in rows] == list(best_kappa_bound.RECIPES)
  for r in rows:
    assert r["kappa"] == 5.0 and r["sweep_valid_nll"] == 90.0
    assert r["iw_samples"] == best_kappa_bound.IW_SAMPLES["small"]
    assert r["iw_ppl"] < r["test_ppl"]  # The IW bound is tighter than the ELBO.
    assert r["table3_kappa35_iw_ppl"] == best_kappa_bound.TABLE3_IW_PPL[r["recipe"]]
  assert sorted(p.name for p in shared_runs.iterdir() if p.is_dir() and "converged" in p.name) == [
      "ptb_converged__kappa=5", "ptb_paper_protocol_converged__kappa=5"]
  _assert_drawn(tmp_path / "best_kappa_bound.png")
  _assert_rebuilds_from_its_rows(best_kappa_bound, tmp_path)
  # Full scale: the flagfiles' own schedules, not the budget; the flagfile's
  # kappa (Table 3's models) needs no flag.
  full = best_kappa_bound.settings("full", 35.0)
  assert [s.name for s in full.values()] == ["ptb_converged", "ptb_paper_protocol_converged"]
  for s in best_kappa_bound.settings("full", 80.0).values():
    assert s.name.endswith("_converged__kappa=80") and s.flags[-1] == "--kappa=80"
    assert not any("budget" in flag or "small" in flag for flag in s.flags)


def test_collapse_is_the_inputless_setting_and_shares_runs_with_seeds():
  """The paper's Table 1 is Inputless (its vMF row is Table 3's Inputless vMF)."""
  table = collapse.settings("full")
  assert all("_inputless.flags" in s.flags[0] for s in table.values())
  assert table["vmf"].name == "ptb_inputless"
  seed_runs = {(model, seed): s.name for model, seed, s in seeds.settings("full")}
  assert table["gaussian_1layer_annealed"].name == seed_runs[("gaussian_annealed", 0)]
  assert table["vmf"].name == seed_runs[("vmf", 1)]
  assert "--encoder_layers=3" in table["gaussian_3layer"].flags


@pytest.mark.parametrize("scale", ["small", "full"])
def test_every_annealed_gaussian_anneals_over_half_the_budget(scale):
  """One ramp for every annealed baseline, sized to the scale's budget."""
  ramp = f"--kl_schedule={common.annealing_schedule(scale)}"
  gaussian = {"probing": probing.settings(scale)[("nvrnn", "gaussian")],
              "word_swap": word_swap.settings(scale)[("nvrnn", "gaussian")],
              "bow_conditioning": bow_conditioning.settings(scale)[("inputless", "gaussian")],
              "interpolation": interpolation.settings(scale)["gaussian"]}
  for name, s in gaussian.items():
    assert ramp in s.flags, name
  # The same model in two experiments is one run: word_swap's Gaussian is seeds' seed 0.
  seed_runs = {(model, seed): s.name for model, seed, s in seeds.settings(scale)}
  assert gaussian["word_swap"].name == seed_runs[("gaussian_annealed", 0)]
  # An explicit schedule wins, and the converged runs keep their flagfile's own ramp.
  constant = common.setting("ptb_gaussian_inputless", "G-0.5", scale, "--kl_schedule=0.5")
  assert [f for f in constant.flags if f.startswith("--kl_schedule=")] == ["--kl_schedule=0.5"]
  if scale == "full":
    converged = common.setting("ptb_gaussian", "converged", scale, budget=False)
    assert not any(f.startswith("--kl_schedule=") for f in converged.flags)


def test_collapse_logs_kl_nll_mi_and_active_units_per_epoch(tmp_path, shared_runs):
  _run(collapse, tmp_path, shared_runs)
  curves = common.read_csv(tmp_path / "collapse.csv")
  epochs = collapse.SMALL_EPOCHS
  assert sorted({c["model"] for c in curves}) == sorted(collapse.PAPER)
  assert len(curves) == len(collapse.PAPER) * epochs
  vmf_kl = kl.vmf_kl_to_uniform(SMALL_LATENT_DIM,
                                float(common.flag_value("ptb_inputless", "kappa")))
  for c in curves:
    assert 0 <= c["val_active_units"] <= SMALL_LATENT_DIM
    if c["model"] == "vmf":  # A fixed kappa: the KL is the closed form every epoch.
      assert c["val_kl"] == pytest.approx(vmf_kl, rel=1e-4)
  table = common.read_csv(tmp_path / "collapse_table.csv")
  assert [r["paper_nll"] for r in table] == [float(collapse.PAPER[r["model"]][1]) for r in table]
  _assert_drawn(tmp_path / "collapse.png")
  _assert_rebuilds_from_its_rows(collapse, tmp_path)


def test_the_annealing_schedule_spans_the_first_epochs():
  from tf_vmfvae.latent import schedules  # pylint: disable=g-import-not-at-top
  name, _, arguments = common.sigmoid_schedule(3500).partition(":")
  kwargs = {k: float(v) for k, v in (a.split("=") for a in arguments.split(","))}
  weight = schedules.get(name).__class__(**kwargs)
  assert float(weight(0)) < 0.01 and float(weight(3500)) > 0.99
  # The full scale anneals over the first half of the budget's steps.
  epochs, steps = common.epoch_budget("full")
  assert epochs == int(common.flag_value("budget", "epochs"))
  assert steps == pytest.approx(42_068 / int(common.flag_value("budget", "batch_size")), rel=0.05)
  assert common.annealing_schedule("full") == common.sigmoid_schedule(epochs * steps // 2)


def test_full_scale_trains_every_setting_to_the_budget_in_the_grids_buckets():
  flags = common.config_flags("ptb_inputless", "full", "--kappa=20")
  assert [f.split("/")[-1] for f in flags] == ["ptb_inputless.flags", "budget.flags",
                                                "--bucket_width=5", "--kappa=20"]
  converged = common.config_flags("ptb", "full", budget=False)
  assert [f.split("/")[-1] for f in converged] == ["ptb.flags", "--bucket_width=5"]
  # The trainer's default batches one length together; the grid keeps its first recipe.
  assert config.DataConfig().bucket_width == 1


def test_kappa_sweep_kl_grows_with_kappa_and_resumes(tmp_path, shared_runs, monkeypatch):
  # Two of the four settings keep the test short; the binary runs all four.
  monkeypatch.setattr(kappa_sweep, "SETTINGS", {
      k: kappa_sweep.SETTINGS[k] for k in ("inputless", "standard")})
  monkeypatch.setattr(kappa_sweep, "GAUSSIAN_WEIGHTS", (0.5,))
  _run(kappa_sweep, tmp_path, shared_runs)
  rows = common.read_csv(tmp_path / "kappa_sweep.csv")
  kappas = kappa_sweep.KAPPAS["small"]
  assert len(rows) == 2 * len(kappas) + len(kappa_sweep.GAUSSIAN_WEIGHTS)
  for setting in ("inputless", "standard"):
    vmf = [r for r in rows if r["setting"] == setting and r["latent"] == "vmf"]
    assert [r["kappa"] for r in vmf] == sorted(kappas)
    for r in vmf:
      assert r["kl"] == pytest.approx(kl.vmf_kl_to_uniform(SMALL_LATENT_DIM, r["kappa"]),
                                      rel=1e-4)
      assert r["nll"] == pytest.approx(r["recon"] + r["kl"], rel=1e-5)
    assert np.all(np.diff([r["kl"] for r in vmf]) > 0)
  for name in ("kappa_sweep.png", "kappa_sweep_heatmap.png"):
    _assert_drawn(tmp_path / name)
  # The best kappa of each setting is chosen on validation.
  for setting in ("inputless", "standard"):
    vmf = [r for r in rows if r["setting"] == setting and r["latent"] == "vmf"]
    chosen = [r["kappa"] for r in vmf if r["best_on_valid"] == "True"]
    assert chosen == [min(vmf, key=lambda r: r["val_nll"])["kappa"]]
  # Every finished setting has its row, with its measures and history ...
  records = common.read_records(tmp_path / "kappa_sweep_runs.csv")
  assert sorted(r["setting"] for r in records) == sorted(
      s.name for *_, s in kappa_sweep.settings("small"))
  for record in records:
    assert record["flags"].startswith("--flagfile=configs/")
    assert [h["epoch"] for h in record["history"]] == list(range(1, 4))
    assert record["best_val_nll"] == min(h["val_nll"] for h in record["history"])
  # ... so that with the run directories gone, the sweep rebuilds the same
  # table from the rows and trains nothing.
  before = (tmp_path / "kappa_sweep.csv").read_text()
  (tmp_path / "kappa_sweep.csv").unlink()
  empty = tmp_path / "no_runs"
  kappa_sweep.run(tmp_path, "small", runs_dir=empty, num_threads=1)
  assert not any(empty.iterdir())
  assert (tmp_path / "kappa_sweep.csv").read_text() == before
  # Finished runs are skipped: their state is not rewritten.
  states = sorted(shared_runs.glob("*/state.json"))
  before = [p.stat().st_mtime_ns for p in states]
  common.train_settings([s for *_, s in kappa_sweep.settings("small")], shared_runs,
                        num_threads=1)
  assert [p.stat().st_mtime_ns for p in states] == before
  # A grid still training reports on its recorded part (--report_only):
  # the Inputless rows alone give their bars, a heatmap, and nothing trains.
  partial = tmp_path / "partial"
  inputless = {s.name for name, latent, _, s in kappa_sweep.settings("small")
               if name == "inputless" and latent == "vmf"}
  for record in records:
    if record["setting"] in inputless:
      common.append_record(partial / "kappa_sweep_runs.csv", record)
  kappa_sweep.run(partial, "small", runs_dir=empty, num_threads=1, train=False)
  assert not any(empty.iterdir())
  reported = common.read_csv(partial / "kappa_sweep.csv")
  assert [(r["setting"], r["kappa"]) for r in reported] == [
      ("inputless", k) for k in sorted(kappas)]
  assert [r["nll"] for r in reported] == [
      r["nll"] for r in rows if r["setting"] == "inputless" and r["latent"] == "vmf"]
  for name in ("kappa_sweep.png", "kappa_sweep_heatmap.png"):
    _assert_drawn(partial / name)
  with pytest.raises(common.NothingRecordedError, match="No setting of kappa_sweep"):
    kappa_sweep.run(tmp_path / "nothing", "small", runs_dir=empty, train=False)


def test_seeds_reports_every_seed_and_counts_the_stalled(tmp_path, shared_runs):
  _run(seeds, tmp_path, shared_runs)
  rows = common.read_csv(tmp_path / "seeds.csv")
  assert [(r["model"], int(r["seed"])) for r in rows] == [
      (model, seed) for model in seeds.MODELS for seed in seeds.SEEDS["small"]]
  for r in rows:
    assert r["stalled"] == str(r["final_val_mi"] < seeds.STALL_MI)
  summary = {r["model"]: r for r in common.read_csv(tmp_path / "seeds_summary.csv")}
  for model in seeds.MODELS:
    mine = [r for r in rows if r["model"] == model]
    assert summary[model]["seeds"] == len(seeds.SEEDS["small"])
    assert summary[model]["stalled"] == sum(r["stalled"] == "True" for r in mine)
  # The vMF seed of the flagfile (1) trains the flagfile's own run.
  names = [s.name for _, _, s in seeds.settings("small")]
  assert "ptb_inputless" in names and "ptb_inputless__seed=0" in names
  assert (tmp_path / "seeds.png").is_file()
  _assert_rebuilds_from_its_rows(seeds, tmp_path)


def test_bow_conditioning_table(tmp_path, shared_runs):
  _run(bow_conditioning, tmp_path, shared_runs)
  rows = common.read_csv(tmp_path / "bow_conditioning.csv")
  assert [(r["decoder"], r["latent"]) for r in rows] == list(bow_conditioning.PAPER)
  # One test set for all: perplexity orders the models as their mean NLL does.
  assert np.argsort([r["ppl"] for r in rows]).tolist() == np.argsort(
      [r["nll"] for r in rows]).tolist()
  for r in rows:
    if r["latent"] == "rnnlm":
      assert np.isnan(r["kl"]) and np.isnan(r["mi"])
    elif r["latent"] == "vmf":
      kappa = 35.0 if r["decoder"] == "standard" else 80.0
      assert r["kl"] == pytest.approx(kl.vmf_kl_to_uniform(SMALL_LATENT_DIM, kappa), rel=1e-4)
  _assert_drawn(tmp_path / "bow_conditioning.png")
  _assert_rebuilds_from_its_rows(bow_conditioning, tmp_path)


def test_probes_recover_a_learnable_map_and_not_noise():
  rng = np.random.default_rng(0)
  inputs = rng.normal(size=(1200, 6)).astype(np.float32)
  targets = np.tanh(inputs @ rng.normal(size=(6, 4))).astype(np.float32)
  assert probing.probe(inputs[:1000], targets[:1000], inputs[1000:], targets[1000:],
                       epochs=40, width=32) > 0.9
  noise = rng.normal(size=targets.shape).astype(np.float32)
  assert abs(probing.probe(inputs[:1000], noise[:1000], inputs[1000:], noise[1000:],
                           epochs=5, width=32)) < 0.2


def test_probing_table(tmp_path, shared_runs):
  _run(probing, tmp_path, shared_runs)
  rows = common.read_csv(tmp_path / "probing.csv")
  assert {(r["setting"], r["latent"], r["direction"]) for r in rows} == set(probing.PAPER)
  # The mu -> BoW baseline predicts the same bags of words whatever the model.
  baselines = {r["baseline_cosine"] for r in rows if r["direction"] == "mu_to_bow"}
  assert len(baselines) == 1 and 0 < baselines.pop() < 1
  _assert_drawn(tmp_path / "probing.png")
  _assert_rebuilds_from_its_rows(probing, tmp_path)


def test_word_swap_cosine_is_one_without_swaps(tmp_path, shared_runs):
  _run(word_swap, tmp_path, shared_runs)
  rows = common.read_csv(tmp_path / "word_swap.csv")
  probabilities = word_swap.GRID["small"][0]
  assert len(rows) == 4 * len(probabilities)
  for r in rows:
    if r["swap_probability"] == 0:
      assert r["mean_cosine"] == pytest.approx(1.0, abs=1e-6)
      assert r["standard_error"] == pytest.approx(0.0, abs=1e-6)
  _assert_drawn(tmp_path / "word_swap.png")
  _assert_rebuilds_from_its_rows(word_swap, tmp_path)


def test_swaps_keep_the_words_and_swap_at_the_rate_asked():
  rng = np.random.default_rng(1)
  sentence = np.arange(1, 5001)
  for p in (0.0, 0.3, 1.0):
    swapped = word_swap.swap_adjacent(sentence, p, rng)
    assert sorted(swapped) == sorted(sentence)
    moved = np.mean(swapped != sentence)
    # A pair is swapped with probability p, then skipped: 2p / (1 + p) of the words move
    # (5,000 words: the standard deviation is below 0.01).
    assert moved == pytest.approx(2 * p / (1 + p), abs=0.03)


def test_learned_kappa_stays_in_its_clip_range(tmp_path, shared_runs):
  _run(learned_kappa, tmp_path, shared_runs)
  curves = common.read_csv(tmp_path / "learned_kappa.csv")
  learned = [c for c in curves if c["kappa"] == "learned"]
  assert learned and all(1.0 <= c["kappa_p10"] <= c["kappa_mean"] + 1e-6 and
                         c["kappa_p10"] <= c["kappa_p90"] <= 500.0 for c in learned)
  fixed = {c["decoder"]: c["kappa_mean"] for c in curves if c["kappa"] == "fixed"}
  assert fixed == {"standard": 35.0, "inputless": 80.0}
  assert len(common.read_csv(tmp_path / "learned_kappa_table.csv")) == 4
  _assert_drawn(tmp_path / "learned_kappa.png")
  _assert_rebuilds_from_its_rows(learned_kappa, tmp_path)


def test_interpolation_decodes_every_point_of_both_paths(tmp_path, shared_runs):
  _run(interpolation, tmp_path, shared_runs)
  rows = common.read_csv(tmp_path / "interpolation.csv")
  pairs, steps = interpolation.SIZES["small"]
  assert len(rows) == pairs * steps
  assert [r["fraction"] for r in rows] == pytest.approx(list(np.linspace(0, 1, steps)) * pairs)
  assert all(isinstance(r["vmf"], str) and isinstance(r["gaussian"], str) for r in rows)
  _assert_drawn(tmp_path / "interpolation.png")
  _assert_rebuilds_from_its_rows(interpolation, tmp_path)


def test_a_failed_training_run_is_one_error_naming_its_log(tmp_path):
  bad = common.Setting("bad", "bad", ("--flagfile=/nonexistent.flags",))
  with pytest.raises(common.TrainingError, match="bad.log"):
    common.train_settings([bad], tmp_path, num_threads=1)

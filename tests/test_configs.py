"""Every shipped flagfile parses into a valid experiment and builds its model."""

import pathlib

from absl import flags
from absl.testing import flagsaver
import pytest

from tf_vmfvae import train
from tf_vmfvae import train_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FLAGFILES = sorted((ROOT / "configs").glob("*.flags"))


def _experiment(flagfile):
  with flagsaver.flagsaver():
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train", f"--flagfile={flagfile}", "--model_dir=unused"])
    return train.experiment_from_flags()


def test_there_are_flagfiles():
  assert {"ptb.flags", "ptb_paper.flags", "smoke.flags", "20news.flags"} <= {
      f.name for f in FLAGFILES}


@pytest.mark.parametrize("flagfile", FLAGFILES, ids=lambda p: p.name)
def test_flagfile_builds_a_model(flagfile):
  experiment = _experiment(flagfile)
  num_labels = 5 if experiment.data.dataset == "yelp" else 0
  model = train_lib.build_model(experiment, vocabulary_size=40, num_labels=num_labels)
  assert model.get_config()["vocabulary_size"] == 40


def test_main_job_and_paper_recipe():
  ours, paper = _experiment(ROOT / "configs/ptb.flags"), _experiment(
      ROOT / "configs/ptb_paper.flags")
  assert ours.model["latent"] == paper.model["latent"] == "vmf"
  assert ours.model["concentration"] == paper.model["concentration"] == 35.0
  assert ours.model["tie_embeddings"] and not paper.model["tie_embeddings"]
  assert (paper.train.optimizer, paper.train.learning_rate, paper.train.clip_norm,
          paper.train.batch_size, paper.train.lr_decay, paper.train.max_bad_epochs) == (
              "sgd", 10.0, 0.25, 20, 1.2, 15)

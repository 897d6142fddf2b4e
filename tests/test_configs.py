"""Every shipped flagfile parses into a valid experiment and builds its model."""

import pathlib
import re

from absl import flags
import pytest

from tf_vmfvae import train
from tf_vmfvae import train_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FLAGFILES = sorted((ROOT / "configs").glob("*.flags"))


def _experiment(flagfile):
  return train.experiment_from_args(f"--flagfile={flagfile}")


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


@pytest.mark.parametrize("base", ["ptb", "ptb_inputless"])
def test_paper_protocol_flagfiles_add_three_draws_to_their_base(base, monkeypatch):
  monkeypatch.chdir(ROOT)  # Their nested --flagfile is relative to the repository.
  protocol = _experiment(ROOT / f"configs/{base}_paper_protocol.flags")
  plain = _experiment(ROOT / f"configs/{base}.flags")
  assert protocol.model.pop("decode_mean_of") == 3
  assert protocol == plain and "decode_mean_of" not in plain.model
  assert train_lib.build_model(_experiment(ROOT / f"configs/{base}_paper_protocol.flags"),
                               vocabulary_size=40).decode_mean_of == 3


def test_a_bare_family_gets_its_own_model_defaults():
  """Unset model flags take the family's constructor defaults, not NVRNN's."""
  nvdm = train_lib.build_model(train.experiment_from_args("--family=nvdm", "--dataset=20news"),
                               vocabulary_size=40)
  assert (nvdm.latent_dim, nvdm.encoder_layers, nvdm.latent.concentration, nvdm.dropout) == (
      25, 2, 100.0, 0.1)
  nvrnn = train_lib.build_model(train.experiment_from_args(), vocabulary_size=40)
  assert (nvrnn.latent_dim, nvrnn.encoder_layers, nvrnn.latent.concentration, nvrnn.dropout) == (
      50, 1, 80.0, 0.5)
  # A flag that is given wins.
  assert train_lib.build_model(
      train.experiment_from_args("--family=nvdm", "--latent_dim=7"), vocabulary_size=40).latent_dim == 7


def test_importing_the_config_imports_no_keras():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = "import sys, tf_vmfvae.config; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
  assert result.stdout.split() == ["False", "False"]


def test_kl_nats_sets_the_concentration_of_that_kl_at_the_latent_dim():
  from tf_vmfvae import latent  # pylint: disable=g-import-not-at-top
  by_kl = train.experiment_from_args("--latent_dim=8", "--kl_nats=3")
  assert latent.vmf_kl_to_uniform(8, by_kl.model["concentration"]) == pytest.approx(3.0)
  # The family's latent dimension when the flag leaves it (NVRNN: 50).
  default_dim = train.experiment_from_args("--kl_nats=19.5152")
  assert default_dim.model["concentration"] == pytest.approx(80.0, rel=1e-5)
  with pytest.raises(ValueError, match="not both"):
    train.experiment_from_args("--kappa=35", "--kl_nats=3")
  with pytest.raises(flags.IllegalFlagValueError, match=re.escape("--kl_nats=-1.0: must be > 0")):
    train.experiment_from_args("--kl_nats=-1")
  with pytest.raises(ValueError, match=re.escape("--kl_nats: `nats`=1000000000.0 needs a concentration")):
    train.experiment_from_args("--kl_nats=1e9")


@pytest.mark.parametrize("spec, message", [
    ("sigmoid:foo=1", "--kl_schedule=sigmoid:foo=1: sigmoid takes "),
    ("sigmoid:midpoint=ten", "'ten' is not a number; the form is NAME or NAME:KEY=NUMBER"),
    ("warm", "--kl_schedule=warm: `kl_schedule` must be one of"),
])
def test_a_bad_kl_schedule_is_one_message_naming_the_flag(spec, message):
  with pytest.raises(ValueError, match="^" + re.escape(message) if spec != "sigmoid:midpoint=ten"
                     else re.escape(message)):
    train.parse_kl_schedule(spec)


def test_kl_schedule_numbers_take_any_float_form():
  parsed = train.parse_kl_schedule("sigmoid:midpoint=1E3,steepness=4.6e-4")
  assert parsed["config"]["midpoint"] == 1000 and parsed["config"]["steepness"] == 4.6e-4


def test_a_shipped_flagfile_can_be_named_from_any_folder(tmp_path, monkeypatch):
  by_path = train.experiment_from_args("--flagfile=configs/ptb.flags")
  monkeypatch.chdir(tmp_path)  # Not the checkout: only the name can find it.
  assert train.experiment_from_args("--flagfile=ptb") == by_path
  # Inside a flagfile too: ptb_paper_protocol.flags reads --flagfile=ptb.
  protocol = train.experiment_from_args("--flagfile=ptb_paper_protocol")
  assert protocol.model["decode_mean_of"] == 3
  assert protocol.model["concentration"] == by_path.model["concentration"]
  with pytest.raises(FileNotFoundError, match=r"--flagfile=ptbb: no such file.*shipped: .*ptb,"):
    train.experiment_from_args("--flagfile=ptbb")


def test_the_wheel_ships_the_flagfiles(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import zipfile  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).resolve().parent.parent
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "-q", "-w", str(tmp_path), str(root)], check=True, timeout=600,
                 capture_output=True)
  wheel, = tmp_path.glob("tf_vmfvae-*.whl")
  names = set(zipfile.ZipFile(wheel).namelist())
  shipped = {f"tf_vmfvae/configs/{p.name}" for p in (root / "configs").glob("*.flags")}
  assert shipped and shipped <= names

"""Experiment configuration: frozen dataclasses, saved as JSON in the model dir.

Library code takes these objects; only the binaries read flags.
"""

import dataclasses
import json
import pathlib
from typing import Any, Dict, Optional

from tf_vmfvae import errors

# The shipped flagfiles: package data (tf_vmfvae/configs/) in an installed
# wheel, the checkout's configs/ in a source tree or an editable install.
_FLAGFILE_FOLDERS = (pathlib.Path(__file__).resolve().parent / "configs",
                     pathlib.Path(__file__).resolve().parents[1] / "configs")
FLAGFILE_SUFFIX = ".flags"


def configs_dir():
  """The folder of the shipped flagfiles (`configs/`)."""
  for folder in _FLAGFILE_FOLDERS:
    if folder.is_dir():
      return folder
  raise errors.MissingFileError(
      f"The shipped flagfiles are missing: looked in {', '.join(map(str, _FLAGFILE_FOLDERS))}.")


def flagfile_path(name_or_path):
  """A flagfile given as a path, or as the name of a shipped one.

  Example:
  >>> flagfile_path("ptb").name
  'ptb.flags'
  """
  path = pathlib.Path(name_or_path).expanduser()
  if path.is_file():
    return path
  name = path.name[:-len(FLAGFILE_SUFFIX)] if path.name.endswith(FLAGFILE_SUFFIX) else path.name
  shipped = configs_dir() / (name + FLAGFILE_SUFFIX)
  if (len(path.parts) == 1 or path.parent.name == "configs") and shipped.is_file():
    return shipped
  names = sorted(p.name[:-len(FLAGFILE_SUFFIX)] for p in configs_dir().glob("*" + FLAGFILE_SUFFIX))
  raise errors.MissingFileError(
      f"--flagfile={name_or_path}: no such file, nor a shipped flagfile of that name "
      f"(shipped: {', '.join(names)}).")

FAMILIES = ("nvrnn", "nvdm")
# Model arguments that were renamed, per family: {old name: new name}. Run
# directories and saved models written under an old name still load.
# `decode_samples` named two things: the mean of n draws fed to the NVRNN
# decoder (not a bound), and n NVDM reconstructions averaged (a bound).
RENAMED_MODEL_ARGUMENTS = {
    "nvrnn": {"decode_samples": "decode_mean_of"},
    "nvdm": {"decode_samples": "reconstruction_draws"},
}


def upgrade_model_arguments(family, arguments):
  """`arguments` (a model's config) with renamed keys under their new names.

  Example:
  >>> upgrade_model_arguments("nvrnn", {"decode_samples": 3})
  {'decode_mean_of': 3}
  """
  upgraded = dict(arguments)
  for old, new in RENAMED_MODEL_ARGUMENTS.get(family, {}).items():
    if old in upgraded:
      if new in upgraded:
        raise errors.InvalidValueError(f"Give `{new}` only (`{old}` is its old name).")
      upgraded[new] = upgraded.pop(old)
  return upgraded

OPTIMIZERS = ("sgd", "adam")
# NVRNN decoders: Standard feeds the previous word, Inputless only z.
DECODER_MODES = ("standard", "inputless")
# `tf_vmfvae.train_lib.make_strategy` kinds.
STRATEGIES = ("auto", "mirrored", "multi_worker", "one_device")
# How the learning rate moves over a run (`tf_vmfvae.optimization`).
LR_SCHEDULES = ("plateau", "cosine", "linear")
# The latent kinds of `tf_vmfvae.latent.make_latent`; "none" (no latent: the
# RNNLM baseline) is NVRNN's only.
LATENT_KINDS = ("vmf", "vmf_learned", "power_spherical", "gaussian", "none")
# How a fixed-concentration vMF is sampled: Wood (1994)'s rejection loop, or
# the loop-free inverse-CDF table (tf_vmfvae.latent.sampling).
VMF_SAMPLERS = ("wood", "table")


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Which corpus and how it is read and batched.

  Attributes:
    dataset: registry name ("ptb", "yelp", "20news", "rcv1").
    data_dir: folder with the dataset's own files, or None (see
      `tf_vmfvae.data.resolve`).
    max_vocab_size: cap on the vocabulary (reserved ids included), or None.
    min_words: training sentences with fewer words are dropped (paper's
      code: 2, on every split). Validation and test are scored whole.
    max_len: longer training sentences are truncated to this many words, or
      None. Validation and test sentences keep their full length.
    lowercase: case-fold the text in training and in the exported model
      (`tf_vmfvae.data.preprocessing`). Off by default: PTB is lowercase
      except its number token `N`, which case folding would turn into `n`.
    bucket_width: length-bucket width for batching: 1 batches sentences of
      one length together (no padding); 0: no bucketing.
    validation_fraction: bag-of-words corpora have no validation file:
      this fraction of train is held out as "valid".
    validation_seed: seed of that hold-out draw.
  """
  dataset: str = "ptb"
  data_dir: Optional[str] = None
  max_vocab_size: Optional[int] = None
  min_words: int = 2
  max_len: Optional[int] = 100
  lowercase: bool = False
  bucket_width: int = 1
  validation_fraction: float = 0.05
  validation_seed: int = 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How the model is optimized.

  Attributes:
    optimizer: "sgd" (the paper's) or "adam".
    learning_rate: initial learning rate (paper, PTB: SGD 10); the peak rate
      of a budget schedule.
    clip_norm: global gradient-norm clip (paper: 0.25), or None.
    batch_size: global batch size (paper, PTB: 20).
    epochs: maximum number of epochs (paper: 100).
    lr_schedule: "plateau" (the paper's: `lr_decay`, `max_bad_epochs`), or a
      budget: "cosine" or "linear" decay to zero over exactly `epochs`
      epochs after a linear warm-up (`tf_vmfvae.optimization`).
    warmup_epochs: budget schedules: epochs (a float) of linear warm-up.
    lr_decay: plateau schedule: the learning rate is divided by this after
      each epoch without validation improvement (paper: 1.2); 1 disables it.
    max_bad_epochs: plateau schedule: stop after this many epochs without
      improvement (paper: 15), or None.
    steps_per_epoch: cap on the batches of an epoch (smoke runs), or None.
    seed: global seed (weights, sampling, shuffling).
    log_latent_usage: after every epoch, log the validation mutual
      information, active units and (learned) kappa to the history and
      TensorBoard (`tf_vmfvae.latent.usage`; one encoder pass over the
      validation set, a few seconds to trace the first time).
    jit_compile: compile the training and validation steps with XLA
      (`keras.Model.compile(jit_compile=...)`). XLA compiles once per batch
      shape, so batches are padded to their length bucket's upper edge.
  """
  optimizer: str = "sgd"
  learning_rate: float = 10.0
  clip_norm: Optional[float] = 0.25
  batch_size: int = 20
  epochs: int = 100
  lr_schedule: str = "plateau"
  warmup_epochs: float = 0.0
  lr_decay: float = 1.2
  max_bad_epochs: Optional[int] = 15
  steps_per_epoch: Optional[int] = None
  seed: int = 0
  log_latent_usage: bool = True
  jit_compile: bool = False


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """A whole experiment: data, model constructor arguments, training."""
  family: str = "nvrnn"
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  model: Dict[str, Any] = dataclasses.field(default_factory=dict)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

  def __post_init__(self):
    if self.family not in FAMILIES:
      raise errors.InvalidValueError(
          f"`family` must be one of {list(FAMILIES)}, got {self.family!r}.")
    if self.train.optimizer not in OPTIMIZERS:
      raise errors.InvalidValueError(
          f"`optimizer` must be one of {list(OPTIMIZERS)}, got {self.train.optimizer!r}.")
    for name in ("batch_size", "epochs"):
      value = getattr(self.train, name)
      if not isinstance(value, int) or value < 1:
        raise errors.InvalidValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    if not self.train.learning_rate > 0:
      raise errors.InvalidValueError(
          f"`learning_rate` must be > 0, got {self.train.learning_rate!r}.")
    if self.train.lr_schedule not in LR_SCHEDULES:
      raise errors.InvalidValueError(
          f"`lr_schedule` must be one of {list(LR_SCHEDULES)}, "
          f"got {self.train.lr_schedule!r}.")
    if not 0.0 <= self.train.warmup_epochs < self.train.epochs:
      raise errors.InvalidValueError(
          f"`warmup_epochs` must be in [0, epochs={self.train.epochs}), "
          f"got {self.train.warmup_epochs!r}.")
    if not self.train.lr_decay >= 1.0:
      raise errors.InvalidValueError(f"`lr_decay` must be >= 1, got {self.train.lr_decay!r}.")

  def to_json(self):
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_json(cls, text):
    raw = json.loads(text)
    return cls(family=raw["family"], data=DataConfig(**raw["data"]),
               model=upgrade_model_arguments(raw["family"], raw["model"]),
               train=TrainConfig(**raw["train"]))

  def save(self, path):
    pathlib.Path(path).write_text(self.to_json() + "\n")

  @classmethod
  def load(cls, path):
    return cls.from_json(pathlib.Path(path).read_text())

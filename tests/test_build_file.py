"""BUILD must be true to the tree: every module, test and bench is listed."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _listed_sources():
  text = (ROOT / "BUILD").read_text()
  return set(re.findall(r'"([\w/]+\.py)"', text))


def test_every_python_file_is_in_build():
  files = {str(p.relative_to(ROOT)) for folder in ("tf_vmfvae", "tests", "bench")
           for p in (ROOT / folder).rglob("*.py")}
  missing = sorted(files - _listed_sources())
  assert not missing, f"BUILD does not list: {missing}"


def test_build_lists_no_missing_file():
  stale = sorted(src for src in _listed_sources() if not (ROOT / src).exists())
  assert not stale, f"BUILD lists files that do not exist: {stale}"

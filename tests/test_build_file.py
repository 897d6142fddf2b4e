"""BUILD must be true to the tree: every module, test and bench is listed, and
each target's deps are exactly the package modules its sources import."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
_TARGET = re.compile(r"(py_library|py_test|py_binary)\((.*?)\n\)", re.S)


def _targets():
  """{name: (kind, [srcs], [deps])} parsed from BUILD."""
  targets = {}
  for kind, body in _TARGET.findall((ROOT / "BUILD").read_text()):
    name = re.search(r'name = "([\w]+)"', body).group(1)
    srcs = re.findall(r'"([\w/]+\.py)"', re.search(r"srcs = \[(.*?)\]", body, re.S).group(1))
    deps_match = re.search(r"deps = \[(.*?)\]", body, re.S)
    deps = re.findall(r'":(\w+)"', deps_match.group(1)) if deps_match else []
    targets[name] = (kind, srcs, deps)
  return targets


def _module_file(dotted):
  """The file of a dotted module name in this tree, or None."""
  base = ROOT / dotted.replace(".", "/")
  for path in (base.with_suffix(".py"), base / "__init__.py"):
    if path.is_file():
      return str(path.relative_to(ROOT))
  return None


def _imported_files(source):
  """Files of this tree that a source imports (package modules and bench helpers).

  `from tf_vmfvae.latent import base` imports latent/base.py;
  `from tf_vmfvae.models import NVRNN` imports models/__init__.py.
  """
  files = set()
  for node in ast.walk(ast.parse((ROOT / source).read_text())):
    if isinstance(node, ast.Import):
      modules = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      modules = [(f"{node.module}.{alias.name}"
                  if _module_file(f"{node.module}.{alias.name}") else node.module)
                 for alias in node.names]
    else:
      continue
    for module in modules:
      if module.startswith("tf_vmfvae") and _module_file(module):
        files.add(_module_file(module))
      elif source.startswith("bench/") and (ROOT / "bench" / f"{module}.py").is_file():
        files.add(f"bench/{module}.py")
  return files


def test_every_python_file_is_in_build():
  listed = {src for _, srcs, _ in _targets().values() for src in srcs}
  files = {str(p.relative_to(ROOT)) for folder in ("tf_vmfvae", "tests", "bench")
           for p in (ROOT / folder).rglob("*.py")}
  missing = sorted(files - listed)
  assert not missing, f"BUILD does not list: {missing}"


def test_build_lists_no_missing_file():
  stale = sorted(src for _, srcs, _ in _targets().values() for src in srcs
                 if not (ROOT / src).exists())
  assert not stale, f"BUILD lists files that do not exist: {stale}"


def test_deps_match_imports():
  targets = _targets()
  owner = {src: name for name, (_, srcs, _) in targets.items() for src in srcs}
  problems = []
  for name, (kind, srcs, deps) in sorted(targets.items()):
    needed = {owner[f] for src in srcs for f in _imported_files(src)
              if f in owner and owner[f] != name}
    if name != "conftest" and srcs[0].startswith("tests/"):
      needed.add("conftest")
    missing = needed - set(deps)
    # Tests may also depend on the binaries they run as subprocesses.
    extra = {d for d in set(deps) - needed
             if not (kind == "py_test" and targets[d][0] == "py_binary")}
    if missing:
      problems.append(f"{name} imports but does not depend on {sorted(missing)}")
    if extra:
      problems.append(f"{name} depends on but does not import {sorted(extra)}")
  assert not problems, "\n".join(problems)

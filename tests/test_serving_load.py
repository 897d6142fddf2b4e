"""Serving under concurrent load (`bench/serving_load.py`, small): every answer
arrives and equals the same request sent alone. No timing is asserted."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_concurrent_requests_all_answer_like_single_ones():
  run = subprocess.run(
      [sys.executable, "bench/serving_load.py", "--threads=4", "--requests=12"], cwd=ROOT,
      capture_output=True, text=True, timeout=900, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
  assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
  assert "48 requests in" in run.stdout
  assert "0 errors, 0 answers that differ" in run.stdout

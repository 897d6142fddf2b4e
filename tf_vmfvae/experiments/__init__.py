"""One module per table or figure of the paper: `python -m tf_vmfvae.experiments.<name>`.

Each module has `run(output_dir, scale)` (writes a CSV and a PNG, returns
the rows) and runs as a binary with `--output_dir` and `--scale=small|full`
(`common.main_for`). `small` finishes in minutes on a CPU (the tests use
it); `full` is the paper's setting within the budget stated in the output.
"""

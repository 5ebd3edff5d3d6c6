"""Executes notebooks top to bottom with nbclient; exits 1 if a cell fails.

Usage: python run_notebooks.py [--save] NOTEBOOK.ipynb...

Each notebook runs in its own directory (as Jupyter runs it) on a kernel of
this Python. The notebooks find dnsq through $DNSQ_BIN (tests/notebooks.rs sets
it to the binary under test). --save writes the outputs back into the files:
how the committed outputs and plots are refreshed.
"""
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def kernel_of_this_python(tmp):
    """A `python3` kernel spec running sys.executable, found before any other."""
    spec = Path(tmp) / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    os.environ["JUPYTER_PATH"] = tmp


def main():
    args = sys.argv[1:]
    save = "--save" in args
    paths = [Path(a) for a in args if a != "--save"]
    if not paths:
        sys.exit(__doc__)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        kernel_of_this_python(tmp)
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent.resolve())}})
            t0 = time.monotonic()
            try:
                client.execute()
            except CellExecutionError as e:
                failed.append(path)
                print(f"{path}: a cell failed:\n{e}", file=sys.stderr)
                continue
            print(f"{path}: {len(nb.cells)} cells ran in {time.monotonic() - t0:.1f} s", file=sys.stderr)
            if save:
                nbformat.write(nb, path)
    if failed:
        sys.exit(f"failed: {', '.join(map(str, failed))}")


if __name__ == "__main__":
    main()

"""`python -m batch_export` is the `batch-export` command."""

from batch_export.cli import run

if __name__ == "__main__":
    run(prog_name="batch-export")

"""`python -m batch_export` is the `batch-export` command."""

from batch_export.cli import main

if __name__ == "__main__":
    main(prog_name="batch-export")

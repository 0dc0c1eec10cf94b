# %% [markdown]
# # A batch job in a notebook
#
# Read a Geonode Scraper API batch job into a typed DataFrame, look at its failures and its
# summary, and save it as Parquet. Everything runs offline against the API emulator that
# ships with batch-export, serving the repository's `sample_data/`.
#
# Open this file as a notebook (Jupyter with jupytext, or VS Code: percent-format cells), or
# run it as a plain script from anywhere in the repository: `python examples/notebook.py`.

# %%
import tempfile
from pathlib import Path

import pandas as pd

import batch_export as bx
from batch_export.testing import Emulator

# sample_data/ is at the repository's root: look for it from here upwards.
here = Path.cwd()
sample_data = next(p / "sample_data" for p in (here, *here.parents) if (p / "sample_data").is_dir())
JOB_ID = "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019"

# A real job needs only base_url= and api_key= (or SCRAPER_API_BASE_URL and
# GEONODE_SCRAPER_API_KEY in the environment); here the emulator stands in for the API.
emulator = Emulator(data_dir=sample_data, api_key="demo-key").start()
print(f"Emulator serving {emulator.job_count} jobs at {emulator.base_url}")

# %% [markdown]
# ## The whole job, in one call
#
# `read_job` waits for the job to finish, reads every page, proves each item came exactly
# once, and returns one row per item with Arrow-backed dtypes: integers stay integers with
# nulls, `links` stays a list, and null stays apart from the empty string.

# %%
df = bx.read_job(JOB_ID, base_url=emulator.base_url, api_key="demo-key", progress=False)
print(f"{len(df)} rows")
print(df.dtypes)

# %% [markdown]
# The job's status, counters, tokens and settings travel with the frame.

# %%
job = df.attrs["job"]
print(f"status {job['status']}, {job['failed_urls']} failed, "
      f"{job['tokens_charged_total']} tokens charged")  # fmt: skip

# %% [markdown]
# ## The failures

# %%
failed = df[df["status"] == "failed"]
print(failed[["input_index", "error_code", "http_status", "url"]].to_string(index=False))

# %% [markdown]
# ## The summary
#
# In Jupyter, a `Summary` on its own in a cell shows as a compact report with a bar chart of
# failure codes and a histogram of durations; as text it is a few readable lines, and its
# counts come as small DataFrames too.

# %%
summary = bx.summarize(df)
print(repr(summary))
print(summary.frames.failure_codes.to_string(index=False))

# %% [markdown]
# ## Save it, and read it back
#
# `read_export` gives back the very same frame, dtypes and `attrs` included (pandas'
# own `read_parquet` needs `dtype_backend="pyarrow"` to rebuild the `links` dtype).

# %%
out = Path(tempfile.mkdtemp())
df.to_parquet(out / "items.parquet")
back = bx.read_export(out / "items.parquet")
pd.testing.assert_frame_equal(back, df)
print(f"read back {len(back)} rows from {out / 'items.parquet'}: the same frame")

# The same report as one self-contained HTML file, to share.
bx.write_report(summary, out / "report.html")
print(f"report written to {out / 'report.html'}")

# %%
emulator.stop()

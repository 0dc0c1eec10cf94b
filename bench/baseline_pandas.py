"""The baseline: the pandas script a user would write to export a job without batch-export.

Written as a competent user would: one keep-alive session, the API key from the environment,
the pages read one after another until a short page, `pandas.json_normalize` to turn the nested
items into columns, and `DataFrame.to_parquet`. It keeps every item in memory until the end,
which is what makes it simple.

Run as::

    GEONODE_SCRAPER_API_KEY=... python bench/baseline_pandas.py BASE_URL JOB_ID OUT.parquet
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pandas as pd
import requests

PAGE_SIZE = 50


def fetch_items(base_url: str, job_id: str) -> list[dict[str, Any]]:
    """Every item of a finished job, page after page."""
    session = requests.Session()
    session.headers["X-Api-Key"] = os.environ["GEONODE_SCRAPER_API_KEY"]
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        response = session.get(
            f"{base_url}/v1/batch/{job_id}",
            params={"page": page, "page_size": PAGE_SIZE},
            timeout=60,
        )
        response.raise_for_status()
        results = response.json()["results"]
        items.extend(results)
        if len(results) < PAGE_SIZE:
            return items
        page += 1


def main() -> None:
    base_url, job_id, out = sys.argv[1:4]
    frame = pd.json_normalize(fetch_items(base_url, job_id))
    frame.to_parquet(out, index=False)
    print(f"{len(frame)} rows")


if __name__ == "__main__":
    main()

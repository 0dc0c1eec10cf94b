"""The dlt peer: the same job read with dlt's REST API source into local Parquet files.

What a dlt user writes for this API: the ``rest_api`` source with a page-number paginator
(pages from 1, 50 items each, the end at the first empty page since the API gives no page
count), the key in the ``X-Api-Key`` header, ``results`` as the data, and a pipeline to the
``filesystem`` destination with Parquet files, dlt's own defaults otherwise. dlt flattens the
nested ``data`` and ``metadata`` into columns (``data__markdown``...) and a list such as
``links`` into a child table.

Runs in the venv made by ``make bench-peers`` (dlt is not a dependency of batch-export), so
it imports nothing of this repository. Telemetry is off: nothing leaves 127.0.0.1. dlt's
working files go to a temporary folder, removed at the end. Prints one JSON line: the table's
folder, relative to ``OUT_DIR``.

Run as::

    GEONODE_SCRAPER_API_KEY=... .venv-peers/bin/python bench/peer_dlt.py BASE_URL JOB_ID OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

# Before dlt is imported: its configuration is read from the environment once.
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt
from dlt.sources.rest_api import rest_api_source

PAGE_SIZE = 50
TABLE = "results"


def source(base_url: str, job_id: str, api_key: str) -> object:
    """The job's items as one dlt resource, page after page."""
    return rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "headers": {"X-Api-Key": api_key},
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "page",
                    "total_path": None,
                    "stop_after_empty_page": True,
                },
            },
            "resources": [
                {
                    "name": TABLE,
                    "endpoint": {
                        "path": f"v1/batch/{job_id}",
                        "params": {"page_size": PAGE_SIZE},
                        "data_selector": "results",
                    },
                }
            ],
        }
    )


def main() -> None:
    base_url, job_id, out_dir = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="dlt-pipelines-") as work:
        pipeline = dlt.pipeline(
            pipeline_name="scraper_bench",
            pipelines_dir=work,
            destination=dlt.destinations.filesystem(bucket_url=out_dir),
            dataset_name="scraper",
        )
        pipeline.run(
            source(base_url, job_id, os.environ["GEONODE_SCRAPER_API_KEY"]),
            loader_file_format="parquet",
        )
    print(json.dumps({"table": f"scraper/{TABLE}"}))


if __name__ == "__main__":
    main()

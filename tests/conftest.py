import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def real_data_dir():
    d = os.environ.get("ECGJAX_DATA_DIR")
    if not d or not (Path(d) / "mitdb").is_dir():
        pytest.skip("set ECGJAX_DATA_DIR to the folder holding mitdb/ to run real-data tests")
    return Path(d)

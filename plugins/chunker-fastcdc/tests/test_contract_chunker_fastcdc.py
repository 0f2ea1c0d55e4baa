"""FastCDC must pass the chunker contract at every normalization level."""

from collections.abc import Callable
from typing import Any

import pytest
from vger_chunker_fastcdc import FastCDCChunker

from vger.testing import ChunkerContract


class TestFastCDCContract(ChunkerContract):
    chunker_class = FastCDCChunker

    @pytest.fixture(params=[0, 1, 2, 3], ids=lambda level: f"nc{level}")
    def chunker_factory(self, request: pytest.FixtureRequest) -> Callable[[int, int, int], Any]:
        def make(min_size: int, avg_size: int, max_size: int) -> Any:
            return FastCDCChunker(min_size, avg_size, max_size, {"normalized_chunking": request.param})

        return make

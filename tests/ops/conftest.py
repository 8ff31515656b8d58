"""The GPU agreement tests' tolerance per test (cuda_agreement.py)."""

import pytest
from cuda_agreement import use_gpu_tolerance


@pytest.fixture(autouse=True)
def _gpu_tolerance(request):
    use_gpu_tolerance("gpu" in request.node.name)

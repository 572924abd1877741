import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    # The test machine's cores are shared; more threads only add contention.
    torch.set_num_threads(min(2, torch.get_num_threads()))

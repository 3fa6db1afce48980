import pytest
import torch

pytest_plugins = ["nas_core.testing.pytest_plugin"]


@pytest.fixture(autouse=True)
def _one_thread():
    # 2 shared cores: keep each test on one thread and deterministic
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n)

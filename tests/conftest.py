import torch

pytest_plugins = ["nas_core.testing.pytest_plugin"]

torch.set_num_threads(1)

pytest_plugins = ["nas_core.testing.pytest_plugin"]

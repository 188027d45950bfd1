import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (long rtlsim / training cases)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# Small trained and compiled MLPs (support_models.py), shared by the export and compile tests. Imported
# inside the fixtures: support_models loads torch and FINN (seconds), which most tests never need.
@pytest.fixture(scope="session")
def trained():
    from support_models import trained_models

    return trained_models()


@pytest.fixture(scope="session")
def compiled():
    from support_models import compiled_models

    return compiled_models()

"""Servers shared by the tests of one pytest session. Each fixture starts its
own server on 127.0.0.1 and stops it when the session ends."""

import pytest

from localenv.emulator import Emulator
from localenv.standin import EMULATOR_FUNCTION_CREDENTIALS, DsqlStandin

# Dummy credentials that tests sign DSQL tokens with.
TEST_ACCESS_KEY_ID = "AKIDSTANDINTEST"
TEST_SECRET_ACCESS_KEY = "standin-test-secret"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    with Emulator(tmp_path_factory.mktemp("emulator")) as server:
        yield server


@pytest.fixture(scope="session")
def standin():
    credentials = {**EMULATOR_FUNCTION_CREDENTIALS, TEST_ACCESS_KEY_ID: TEST_SECRET_ACCESS_KEY}
    with DsqlStandin(credentials=credentials) as server:
        yield server

import os, sys
from pathlib import Path
# Tests never touch the network and never write into the user's cache.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))

import shutil
import pytest

@pytest.fixture(scope='module')
def module_tmp(tmp_path_factory, request):
    """A scratch folder shared by the tests of one module, removed when the module's tests are done unless one of them
    failed (then kept for a look, like pytest's own `tmp_path` under `tmp_path_retention_policy = "failed"`).
    Checkpoints of the tiny models are 84 MB with their optimizer state, so keeping every module's folder until the end
    of the session would need several GB of disk."""
    d = tmp_path_factory.mktemp(request.module.__name__.rsplit('.', 1)[-1])
    failed = request.session.testsfailed
    yield d
    if request.session.testsfailed == failed: shutil.rmtree(d, ignore_errors=True)

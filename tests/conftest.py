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

# ---------------------------------------------------------------- two workers (pytest-xdist)
# `make pytest` runs `pytest -n 2 --dist loadscope`: two worker processes, one per core of the reference machine. With
# the scheduler below a whole module goes to one worker (its module-scoped fixtures are built once), except the tests
# named in TOGETHER, which go as one unit whatever their module.
# xdist's own `--dist loadgroup` with `xdist_group` marks does not group under pytest 9.2 (it renames node ids, which
# pytest 9.2 ignores: pytest-dev/pytest-xdist#1386), so the groups are named here, by node id.
TOGETHER = {
    # the two tests that start `torchrun --nproc_per_node 2`: two torchrun jobs (4 ranks and their agents on 2 cores,
    # and two free ports picked at the same moment) never run at once
    'torchrun': ('tests/test_train_ddp.py', 'tests/test_cli.py::test_end_to_end'),
}
IN_WORKER = bool(os.environ.get('PYTEST_XDIST_WORKER'))
# One core per worker: torch (and the subprocesses a test starts) use one thread unless a test asks for more, so two
# workers do not fight over two cores with two threads each.
if IN_WORKER: os.environ.setdefault('OMP_NUM_THREADS', '1')

# The long units first (measured with --durations), so that no worker is left with a long one at the end while the
# other is idle; the rest keep their (alphabetical) order. The torchrun group (test_train_ddp.py) goes first: it runs
# while the other worker starts test_train_resume.py, whose training runs are single-threaded.
LONG_FIRST = ('test_train_ddp.py', 'test_train_resume.py', 'test_docs.py', 'test_interrupts.py', 'test_cli.py',
              'test_checkpoints.py', 'test_transfer.py', 'test_alignment.py', 'test_train_loss.py')

def pytest_collection_modifyitems(config, items):
    if not IN_WORKER: return
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: the order within a module is kept

try: from xdist.scheduler import LoadScopeScheduling
except ImportError: LoadScopeScheduling = None

if LoadScopeScheduling is not None:
    class ModuleOrGroupScheduling(LoadScopeScheduling):
        "xdist's `loadscope` with a scope per module, or per TOGETHER group for the tests named there."
        def _split_scope(self, nodeid:str) -> str:
            for group, prefixes in TOGETHER.items():
                if any(nodeid == p or nodeid.startswith((p + '::', p + '[')) for p in prefixes): return group
            return nodeid.split('::', 1)[0]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(config, log):
        if config.getvalue('dist') != 'loadscope': return None
        config.option.loadscopereorder = False    # keep the collection order that LONG_FIRST gives
        return ModuleOrGroupScheduling(config, log)

@pytest.fixture(scope='session', autouse=IN_WORKER)
def shared_mini_built_once():
    """Under two workers, the small sarvlm-mini in the project's cache (which several modules build or load) is built
    by one worker while the other waits on a file lock, before any test runs. `build_mini` removes a finished build it
    finds when its own build is done, so two workers building it at the same moment could delete the folder the other
    one had just written and was about to load."""
    import fcntl
    from sarvlm.core import get_paths, is_small
    from sarvlm.data import build_mini
    if not is_small(): return      # the suite runs with SARVLM_SMALL=1 (`make pytest`)
    cache = get_paths().cache
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache/'.sarvlm-mini-build.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build_mini(0, verbose=False)

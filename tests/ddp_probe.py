"""`python -m sarvlm.train`, plus one probe for tests/test_train_ddp.py.

After `sarvlm.train.main` returns, each rank writes the names of its threads to `<--out>/threads-rank<R>.txt`
(Linux: /proc/self/task/*/comm). gloo's worker threads (`pt_gloo_runloop`, `gloo_tcp_loop`) must be gone by then:
if something still holds the DDP wrapper, they outlive `destroy_process_group` and are torn down during interpreter
shutdown, which aborted one torchrun run in 8 to 20 ("terminate called without an active exception").
"""
import os, sys
from pathlib import Path
from sarvlm.train import main

def thread_names() -> list:
    "Names of this process's threads (empty where there is no /proc)."
    tasks = Path('/proc/self/task')
    return sorted((t/'comm').read_text().strip() for t in tasks.iterdir()) if tasks.is_dir() else []

if __name__ == '__main__':
    main(sys.argv[1:])
    out = Path(sys.argv[sys.argv.index('--out') + 1])
    (out/f"threads-rank{os.environ.get('RANK', '0')}.txt").write_text('\n'.join(thread_names()) + '\n')

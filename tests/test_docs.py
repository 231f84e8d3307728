"""What can be tested of the docs site without Quarto (which has no pip wheel and cannot be installed here):

1. every notebook is committed with outputs, its figures and no error outputs;
2. nbdev's notebook processing (what `nbdev_proc_nbs` / `nbdev_docs` run before Quarto) succeeds;
3. every notebook rendered to HTML by nbconvert shows its figures in headless Chromium (Debian's `chromium`):
   each figure is decoded by the browser, and a screenshot of the page is non-blank where each figure sits.

Chromium is required under CI (`.ci/run` installs it); elsewhere the browser test is skipped when it is missing.
"""
import base64, contextlib, io, json, os, re, shutil, subprocess, threading, time
from pathlib import Path
import numpy as np
import pytest
from sarvlm.reproduce import notebook_figures

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted((ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb'))        # the study notebooks, one module each
PAGES = sorted((ROOT/'nbs').glob('*.ipynb'))                 # every page of the site (index, on-ramp, background too)
NO_FIGURES = {'00_core',   # seeds, paths and switches: nothing to draw
              '00a_stats',   # intervals and paired tests on hand-made numbers: the study notebooks draw them
              '03a_caption_check',   # captions in, problems out: the counts are printed, nothing to draw
              '03b_caption_metrics',   # metrics on hand-made captions: scores and checks, nothing to draw
              '04a_files',   # image files, CSV and class folders: round trips and error messages
              '04c_formats',   # one reader of a data spec: formats found, errors named; 04_data draws the data
              '04d_checkpoint_files',   # file kinds and refusals: bytes in, kinds and messages out
              '05a_features',   # embedding loops and a cache on disk: keys, files and checks, nothing to draw
              '05b_scores',     # zero-shot and R@K rules checked on hand-made cases: numbers, nothing to draw
              '05c_resume',     # callbacks; the killed and resumed runs they make possible are drawn in 06_train
              '17_cli',    # exit codes, argument types and sarvlm_data: commands in, files and text out
              '17a_cli_train',   # sarvlm_train's options and checks; 17b_cli_eval draws the loss of a run
              'index'}     # the landing page's quick tour prints a few numbers; the course draws

def _nb(p): return json.loads(p.read_text(encoding='utf-8'))
def _code(nb): return [c for c in nb['cells'] if c['cell_type'] == 'code']

@pytest.mark.parametrize('nb', PAGES, ids=lambda p: p.stem)
def test_notebook_has_outputs_figures_and_no_errors(nb):
    d = _nb(nb)
    if not _code(d) and nb not in NBS: return   # a page of prose only (index, background)
    outs = [o for c in _code(d) for o in c.get('outputs', [])]
    assert outs, f"{nb.name}: committed without outputs (execute it: see CONTRIBUTING in README)"
    errs = [o.get('ename') for o in outs if o.get('output_type') == 'error']
    assert not errs, f"{nb.name}: error outputs {errs}"
    if nb.stem not in NO_FIGURES:
        assert notebook_figures(nb), f"{nb.name}: no figure in its outputs"
    # every executed code cell ran in order in one kernel (no stale outputs from an earlier session)
    counts = [c['execution_count'] for c in _code(d) if c.get('execution_count') is not None]
    assert counts == sorted(counts), f"{nb.name}: cells were executed out of order"

def test_sidebar_lists_every_notebook():
    side = (ROOT/'nbs'/'sidebar.yml').read_text()
    missing = [p.name for p in PAGES if p.name not in side]
    assert not missing, f"nbs/sidebar.yml does not list {missing}"

def test_nbdev_processing_succeeds(tmp_path):
    """nbdev's docs processing (`proc_nbs`, the step before Quarto) on a copy of the project, in one process: by default
    it spawns a worker per core, each importing the library again, while the other pytest worker needs the second core."""
    for f in ('settings.ini', 'setup.py'): shutil.copy(ROOT/f, tmp_path/f)
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
    code = ("from nbdev.quarto import refresh_quarto_yml, proc_nbs; refresh_quarto_yml(); proc_nbs(force=True, n_workers=0)")
    r = subprocess.run([os.sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'SARVLM_SMALL': '1', 'PYTHONPATH': str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    done = sorted(p.name for p in (tmp_path/'_proc').glob('*.ipynb'))
    assert done == sorted(p.name for p in PAGES), done
    assert (tmp_path/'_proc'/'_quarto.yml').is_file()

# ---------------------------------------------------------------- the browser check
# One headless Chromium for all pages, driven through the DevTools protocol (websocket-client, a Jupyter dependency):
# load the page, ask the browser where each figure is drawn and whether it decoded, and screenshot each figure.
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FIGS_JS = """JSON.stringify([...document.images].filter(i => i.src.startsWith('data:image/png')).map(i => {
  const b = i.getBoundingClientRect();
  return [i.complete ? i.naturalWidth : 0, i.naturalHeight, b.left + window.scrollX, b.top + window.scrollY, b.width, b.height]; }))"""

class Browser:
    "A headless Chromium with one page, driven through the DevTools protocol."
    def __init__(self, profile:Path):
        import websocket, urllib.request
        self.proc = subprocess.Popen([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                                      '--hide-scrollbars', '--remote-debugging-port=0', '--remote-allow-origins=*',
                                      f'--user-data-dir={profile}', 'about:blank'], stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:   # "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
            m = re.search(r'ws://127\.0\.0\.1:(\d+)/', line)
            if m: break
        else: raise RuntimeError('chromium did not start its DevTools endpoint')
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()   # keep stderr drained
        pages = json.load(urllib.request.urlopen(f'http://127.0.0.1:{m.group(1)}/json/list', timeout=30))
        self.ws = websocket.create_connection([p for p in pages if p['type'] == 'page'][0]['webSocketDebuggerUrl'], timeout=120)
        self.n = 0
        self.call('Emulation.setDeviceMetricsOverride', width=1280, height=1000, deviceScaleFactor=1, mobile=False)

    def call(self, method:str, **params):
        self.n += 1; self.ws.send(json.dumps({'id': self.n, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == self.n:
                if 'error' in msg: raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get('result', {})

    def eval(self, js:str): return self.call('Runtime.evaluate', expression=js, returnByValue=True)['result'].get('value')

    def load(self, url:str, timeout:float=60):
        self.call('Page.navigate', url=url); t0 = time.time()
        while not self.eval("document.readyState === 'complete' && [...document.images].every(i => i.complete)"):
            if time.time() - t0 > timeout: raise TimeoutError(f"{url} did not finish loading in {timeout} s")
            time.sleep(0.05)

    def shot(self, x, y, w, h) -> np.ndarray:
        "A screenshot of a region of the page (page coordinates), as grey levels."
        from PIL import Image
        png = self.call('Page.captureScreenshot', format='png', captureBeyondViewport=True,
                        clip=dict(x=x, y=y, width=max(w, 1), height=max(h, 1), scale=1))['data']
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert('L'), dtype=np.float32)

    def close(self):
        with contextlib.suppress(Exception): self.ws.close()
        self.proc.kill(); self.proc.wait()

def _html(nb:Path, out:Path) -> Path:
    "The notebook as nbconvert's HTML (lab template)."
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter(template_name='lab').from_filename(str(nb))
    # the CDN scripts (require.js, MathJax) cannot load offline; dropping them changes nothing that is checked
    body = re.sub(r'<script[^>]+src="https?://[^"]+"[^>]*>\s*</script>', '', body)
    f = out/f'{nb.stem}.html'; f.write_text(body, encoding='utf-8')
    return f

def _check_rendered(nb:Path, tmp:Path, browser:Browser) -> str:
    browser.load(_html(nb, tmp).as_uri())
    top = browser.shot(0, 0, 1280, 1000)
    assert (top < 128).mean() > 0.0002, f"{nb.name}: the page is blank (no dark pixel in its first screen)"
    figs = json.loads(browser.eval(FIGS_JS))
    n_png = len(notebook_figures(nb))
    assert len(figs) == n_png, f"{nb.name}: {n_png} figures in the notebook, {len(figs)} in the rendered page"
    for k, (nw, nh, x, y, w, h) in enumerate(figs):
        assert nw > 0 and w > 10 and h > 10, f"{nb.name}: figure {k} was not decoded or not laid out ({nw}x{nh} shown {w}x{h})"
        crop = browser.shot(x, y, w, h)
        assert crop.std() > 3 and (crop < 245).mean() > 0.005, f"{nb.name}: figure {k} is blank on screen"
    return f"{nb.stem}: {len(figs)} figures drawn and non-blank"

@pytest.fixture(scope='module')
def browser(module_tmp):
    if CHROMIUM is None:
        if os.environ.get('CI'): pytest.fail("chromium is required under CI: .ci/run installs it with apt-get")
        pytest.skip("chromium not installed (apt-get install chromium)")
    b = Browser(module_tmp/'chromium-profile')
    yield b
    b.close()

@pytest.mark.parametrize('nb', PAGES, ids=lambda p: p.stem)
def test_notebook_renders_with_figures_in_chromium(nb, browser, tmp_path):
    print(_check_rendered(nb, tmp_path, browser))

def _one_figure_nb(path:Path, img) -> Path:
    buf = io.BytesIO(); img.save(buf, 'PNG')
    nb = {'cells': [{'cell_type': 'markdown', 'id': 'm0', 'metadata': {}, 'source': '# A figure\n\nSome text above it, on a page that would otherwise be white.'},
                    {'cell_type': 'code', 'id': 'c0', 'metadata': {}, 'execution_count': 1, 'source': 'plot()',
                     'outputs': [{'output_type': 'display_data', 'metadata': {},
                                  'data': {'image/png': base64.b64encode(buf.getvalue()).decode(), 'text/plain': '<Figure>'}}]}],
          'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb)); return path

def test_blank_figure_is_caught(browser, tmp_path):
    "The browser check can fail: an all-white figure is reported blank, a drawn one passes."
    from PIL import Image, ImageDraw
    with pytest.raises(AssertionError, match='figure 0 is blank'):
        _check_rendered(_one_figure_nb(tmp_path/'99_blank.ipynb', Image.new('RGB', (300, 200), 'white')), tmp_path, browser)
    img = Image.new('RGB', (300, 200), 'white'); ImageDraw.Draw(img).rectangle([20, 20, 280, 180], outline='black', width=6)
    assert 'non-blank' in _check_rendered(_one_figure_nb(tmp_path/'99_drawn.ipynb', img), tmp_path, browser)

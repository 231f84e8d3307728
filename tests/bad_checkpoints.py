"""Write a corpus of bad and hostile checkpoint files into a folder, each with the outcome sarvlm must give.

    python tests/bad_checkpoints.py OUTPUT_DIR

`write_cases(folder)` writes every file and returns {name: (outcome, message)}: outcome 'ok' (read_checkpoint reads
it), 'refused' (CheckpointError: the file would run code) or 'unreadable' (CheckpointError naming what the file
is); `message` is a part of the error that must appear. The hostile files write a marker file under
`folder/markers/` if their code ever runs: after any test, `markers(folder)` must be empty.

The TorchScript case is real: `torch.jit.load` on `evil_torchscript.pt` runs its `__setstate__`, which calls
`torch.save` on a path of the author's choice (`test_checkpoints.py` checks that it does, so the tests that refuse
it are meaningful). Its class is defined in this file because TorchScript compiles from source files.
"""
import io, os, pickle, sys, warnings, zipfile
from pathlib import Path
import torch

TS_REFUSED = 'refused: this is a TorchScript archive'
CODE_ZIP_REFUSED = 'refused: this is a zip archive that carries code'
PICKLE_REFUSED = 'refused: this checkpoint is a pickle that would run code when loaded'


class Evil(torch.nn.Module):
    "A module whose loading (`torch.jit.load`) writes a tensor to `path`: any file the user can write."
    def __init__(self, path:str):
        super().__init__()
        self.path = path
        self.weight = torch.nn.Parameter(torch.zeros(2))

    def forward(self, x): return x + self.weight

    @torch.jit.export
    def __getstate__(self): return (self.path, self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state:tuple[str, torch.Tensor, bool]):
        self.path = state[0]
        self.weight = state[1]
        self.training = state[2]
        torch.save(torch.ones(1), self.path)   # runs inside torch.jit.load


class OpensFile:
    "A pickle payload: unpickling it calls open(path, 'w'), creating the marker file."
    def __init__(self, path): self.path = str(path)
    def __reduce__(self): return (open, (self.path, 'w'))


def markers(folder) -> list:
    "Marker files written by code that ran (there must be none)."
    d = Path(folder)/'markers'
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def torchscript_bytes(marker) -> bytes:
    "A TorchScript archive whose loading writes `marker`."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        b = io.BytesIO(); torch.jit.save(torch.jit.script(Evil(str(marker))), b)
    return b.getvalue()


def _zip(members:dict) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w') as z:
        for n, data in members.items(): z.writestr(n, data)
    return b.getvalue()


def _torch_bytes(obj, **kw) -> bytes:
    b = io.BytesIO(); torch.save(obj, b, **kw); return b.getvalue()


def _bad_crc(zb:bytes) -> bytes:
    "A torch.save archive whose data.pkl bytes were changed after writing (its CRC no longer matches)."
    with zipfile.ZipFile(io.BytesIO(zb)) as z: info = next(i for i in z.infolist() if i.filename.endswith('data.pkl'))
    off = info.header_offset   # the local header: 30 bytes, then the name and an extra field of their own lengths
    start = off + 30 + int.from_bytes(zb[off + 26:off + 28], 'little') + int.from_bytes(zb[off + 28:off + 30], 'little')
    b = bytearray(zb); b[start + 3] ^= 0xFF
    return bytes(b)


def cases(folder) -> dict:
    "name -> (bytes, or None for a directory; outcome; message) of every case, markers under `folder/markers/`."
    m = Path(folder).resolve()/'markers'
    sd = {'w': torch.arange(6.).reshape(2, 3)}
    ok_zip, legacy = _torch_bytes(sd), _torch_bytes(sd, _use_new_zipfile_serialization=False)
    from safetensors.torch import save
    st = save(sd)
    ts = torchscript_bytes(m/'torchscript')
    return {
        'ok.pt': (ok_zip, 'ok', ''),
        'ok_legacy.pt': (legacy, 'ok', ''),
        'ok.safetensors': (st, 'ok', ''),
        'evil_torchscript.pt': (ts, 'refused', TS_REFUSED),                      # writes markers/torchscript
        'evil_torchscript.bin': (ts, 'refused', TS_REFUSED),
        'code_folder.pt': (_zip({'m/code/__torch__.py': 'import os', 'm/data.pkl': b'\x80\x02}q\x00.'}),
                           'refused', CODE_ZIP_REFUSED),                         # not valid TorchScript either
        'python_member.pt': (_zip({'m/data.pkl': b'\x80\x02}q\x00.', 'm/version': '3', 'm/setup.py': 'import os'}),
                             'refused', CODE_ZIP_REFUSED),
        'constants_marker.pt': (_zip({'m/data.pkl': b'\x80\x02}q\x00.', 'm/version': '3', 'm/constants.pkl': b''}),
                                'refused', TS_REFUSED),
        'evil_pickle.pt': (pickle.dumps({'state_dict': OpensFile(m/'pickle')}), 'refused', PICKLE_REFUSED),
        'evil_torch_zip.pt': (_torch_bytes({'state_dict': OpensFile(m/'torch_zip')}), 'refused', PICKLE_REFUSED),
        'evil_legacy.pt': (_torch_bytes({'w': OpensFile(m/'legacy')}, _use_new_zipfile_serialization=False),
                           'refused', PICKLE_REFUSED),
        'text.pt': (b'hello\n', 'unreadable', "not a readable checkpoint: it is a text file (it starts 'hello')"),
        'empty.pt': (b'', 'unreadable', 'not a readable checkpoint: it is an empty file (0 bytes)'),
        'truncated.pt': (ok_zip[:len(ok_zip) // 2], 'unreadable', 'it is a truncated or corrupt zip archive'),
        'bad_crc.pt': (_bad_crc(ok_zip), 'unreadable', 'it is a truncated or corrupt zip archive (Bad CRC-32'),
        'not_torch.pt': (_zip({'notes/readme.txt': 'hi'}), 'unreadable', 'it is a zip archive that is not a torch checkpoint'),
        'legacy_truncated.pt': (legacy[:len(legacy) - 20], 'unreadable', "torch.load(weights_only=True) cannot read"),
        'random.bin': (bytes(range(7, 250, 3)) * 4, 'unreadable', 'it is neither a torch archive, a pickle nor safetensors'),
        'corrupt.safetensors': (st[:len(st) - 10], 'unreadable', 'not a readable safetensors file: corrupt or truncated'),
        'text.safetensors': (b'not safetensors', 'unreadable', 'not a readable safetensors file: it is a text file'),
        'folder.pt': (None, 'unreadable', 'is a directory, not a checkpoint file'),
    }


def write_cases(folder) -> dict:
    "Write every case into `folder`; return {name: (outcome, message)}."
    folder = Path(folder); (folder/'markers').mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (data, outcome, msg) in cases(folder).items():
        if data is None: (folder/name).mkdir(exist_ok=True)
        else: (folder/name).write_bytes(data)
        out[name] = (outcome, msg)
    return out


if __name__ == '__main__':
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else 'bad_checkpoints')
    for n, (o, msg) in write_cases(dest).items(): print(f"{n:24s} {o:10s} {msg}")

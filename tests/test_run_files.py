"""A run folder keeps what resume needs and the final weights (issue 15, item 4): `latest.pt` and `checkpoint.pt`, no
`epoch_N.pt` copies unless `--keep-epochs yes` asks for them. One-epoch runs of a tiny model: runs in seconds."""
import pytest
import torch

TRAIN = ['--data', 'toy:16', '--epochs', '2', '--batch-size', '8', '--lr', '1e-3', '--warmup', '1', '--precision', 'fp32',
         '--threads', '1', '--no-progress']
SMALL = {'checkpoint.pt', 'cli.json', 'config.json', 'latest.pt', 'metrics.csv'}

@pytest.fixture()
def world(tmp_path, monkeypatch):
    for k in ('CACHE', 'RUNS', 'OUTPUTS'): monkeypatch.setenv(f'SARVLM_{k}', str(tmp_path/k.lower()))
    return tmp_path

def train(out, *args) -> int:
    from sarvlm.cli import train_main
    return train_main([*TRAIN, '--out', str(out), *args])

def test_only_resume_state_and_final_weights(world, capsys):
    assert train(world/'a') == 0, capsys.readouterr().err
    assert {p.name for p in (world/'a').iterdir()} == SMALL
    ck = torch.load(world/'a'/'latest.pt', weights_only=True)
    assert ck['epoch'] == 2 and 'optimizer' in ck                       # what resume needs
    assert set(torch.load(world/'a'/'checkpoint.pt', weights_only=True)) >= {'state_dict', 'name', 'epoch'}
    assert train(world/'a') == 0                                       # the finished run again: resumes, nothing left
    assert 'resuming from epoch 2' in capsys.readouterr().out

def test_epoch_copies_when_asked(world, capsys):
    assert train(world/'b', '--keep-epochs', 'yes') == 0, capsys.readouterr().err
    assert {p.name for p in (world/'b').iterdir()} == SMALL | {'epoch_1.pt', 'epoch_2.pt'}

def test_default_in_the_library():
    from sarvlm.train import TrainConfig, paper_config
    assert TrainConfig().keep_epochs is False and paper_config('ViT-L-14').keep_epochs is False

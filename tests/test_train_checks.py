"""Runs that can learn and resume only what they started (issue 15): a batch larger than the data and a warm-up longer
than the run are said (with the fix), resuming with other settings is refused with the list of differences unless
--override, another architecture is one line, and the SAR normalisation is saved with the checkpoint and used again."""
import json
import pytest
import torch

TRAIN = ['--data', 'toy:16', '--epochs', '1', '--batch-size', '8', '--lr', '1e-3', '--warmup', '1', '--precision', 'fp32',
         '--threads', '1', '--no-progress']

@pytest.fixture()
def world(tmp_path, monkeypatch):
    for k in ('CACHE', 'RUNS', 'OUTPUTS'): monkeypatch.setenv(f'SARVLM_{k}', str(tmp_path/k.lower()))
    return tmp_path

def train(out, *args) -> int:
    from sarvlm.cli_train import train_main
    return train_main([*TRAIN, '--out', str(out), *args])

def test_batch_larger_than_the_data(world, capsys):
    assert train(world/'a', '--batch-size', '64') == 1
    err = capsys.readouterr().err
    assert 'larger than the 16 training records' in err and 'lower --batch-size' in err and 'Traceback' not in err

def test_warmup_longer_than_the_run(world):
    with pytest.warns(UserWarning, match=r'warm-up of 1000 steps is longer than the run \(2 steps'):
        assert train(world/'a', '--warmup', '1000') == 0

def test_resume_with_other_settings(world, capsys):
    assert train(world/'a') == 0
    assert train(world/'a', '--epochs', '2', '--lr', '1e-4') == 1
    err = capsys.readouterr().err
    assert 'epochs: 1 -> 2' in err and 'lr: 0.001 -> 0.0001' in err and '--override' in err, err
    assert train(world/'a', '--epochs', '2', '--lr', '1e-4', '--override') == 0
    assert 'resuming from epoch 1' in capsys.readouterr().out

def test_resume_another_architecture(world, capsys):
    assert train(world/'a') == 0
    capsys.readouterr()
    assert train(world/'a', '--model', 'SARCap-Tiny', '--batch-size', '8') == 1
    err = capsys.readouterr().err
    assert 'holds a SARCLIP-Tiny checkpoint, not SARCap-Tiny' in err and len(err.strip().splitlines()) == 1, err

def test_scheme_saved_and_used_at_evaluation(world):
    import torch
    from sarvlm.cli_eval import eval_scheme, eval_parser
    assert train(world/'a', '--scheme', 'db_pct') == 0
    ck = torch.load(world/'a'/'checkpoint.pt', weights_only=True)
    assert ck['sar_scheme'] == 'db_pct' and json.loads((world/'a'/'config.json').read_text())['scheme'] == 'db_pct'
    assert eval_scheme(str(world/'a'/'checkpoint.pt')) == 'db_pct'
    assert eval_scheme(str(world/'a'/'checkpoint.pt'), 'db_clip') == 'db_clip'
    a = eval_parser().parse_args(['retrieval', '--checkpoint', 'x.pt', '--scheme', 'auto'])
    assert a.scheme == 'auto'
    from sarvlm.cli_eval import eval_model
    _, eval_tf, _, _ = eval_model(str(world/'a'/'checkpoint.pt'))
    assert eval_tf.scheme == 'db_pct'

def test_bad_scheme_is_a_usage_error(world):
    assert train(world/'a', '--scheme', 'zscore') == 2

def test_readme_train_example_learns():
    "The README's sarvlm_train example sets a warm-up that fits its run."
    from pathlib import Path
    line = next(l for l in (Path(__file__).parents[1]/'README.md').read_text().splitlines() if l.startswith('sarvlm_train'))
    assert '--warmup' in line, line

# A run folder keeps what resume needs and the final weights (issue 15, item 4): `latest.pt` and `checkpoint.pt`,
# no `epoch_N.pt` copies unless `--keep-epochs yes` asks for them (two epochs, so that there would be two).
TWO = ('--epochs', '2')
SMALL = {'checkpoint.pt', 'cli.json', 'config.json', 'latest.pt', 'metrics.csv'}

def test_only_resume_state_and_final_weights(world, capsys):
    assert train(world/'a', *TWO) == 0, capsys.readouterr().err
    assert {p.name for p in (world/'a').iterdir()} == SMALL
    ck = torch.load(world/'a'/'latest.pt', weights_only=True)
    assert ck['epoch'] == 2 and 'optimizer' in ck                       # what resume needs
    assert set(torch.load(world/'a'/'checkpoint.pt', weights_only=True)) >= {'state_dict', 'name', 'epoch'}
    assert train(world/'a', *TWO) == 0                                       # the finished run again: resumes, nothing left
    assert 'resuming from epoch 2' in capsys.readouterr().out

def test_epoch_copies_when_asked(world, capsys):
    assert train(world/'b', *TWO, '--keep-epochs', 'yes') == 0, capsys.readouterr().err
    assert {p.name for p in (world/'b').iterdir()} == SMALL | {'epoch_1.pt', 'epoch_2.pt'}

def test_default_in_the_library():
    from sarvlm.train import TrainConfig, paper_config
    assert TrainConfig().keep_epochs is False and paper_config('ViT-L-14').keep_epochs is False


def test_load_records_reads_every_data_spec(tmp_path):
    "`python -m sarvlm.train --data`: toy, a CSV path through `read_data`, and a bad domain named."
    from sarvlm.train import load_records, toy_records
    from sarvlm import files
    from sarvlm.formats import UsageError
    tr, va = load_records('toy:8')
    assert len(tr) == 8 and va is None
    p = files.to_sarvlm_csv(toy_records(6, seed=2), tmp_path/'csv')['data']
    tr, va = load_records(str(p))
    assert len(tr) == 6 and va is None and set(tr['domain']) <= {'sar', 'optical', 'natural'}
    with pytest.raises(UsageError, match='--domain: must be one of'): load_records('mini:radar')

"""``asr average``: one model directory whose weights are the mean of several, as ESPnet's and
fairseq's checkpoint averaging make one: the epochs a run kept (``RUN/epochs/``, saved when it
trained with ``train.average_last``), or model directories of one network, tokenizer and feature
statistics (the same run's best/ and last/, or runs fine-tuned from one start). A mean of weights
is only meaningful near one optimum: the models of other seeds trained from scratch, though they
would load, average into noise.

Batch norm's statistics are measured again for the mean weights (asr.selection.refresh_batch_norm).
Tuned search settings and token priors belong to the weights they were tuned on: the output has
none (``asr priors``, ``asr lm tune``)."""

from __future__ import annotations

from pathlib import Path

from asr.cli_systems import print_error


def cmd_average(args) -> int:
    import torch
    from safetensors.torch import load_file

    from asr.atomic import check_writable, occupied, overlap
    from asr.model_dir import make_portable, save_model_dir
    from asr.provenance import provenance_files
    from asr.selection import average_state_dicts, batch_norms, refresh_batch_norm
    from asr.train_setup import load_split

    out = Path(args.output)
    inputs = [Path(p) for p in args.inputs]
    for path in inputs:
        how = overlap(out, path)
        if how in ("is", "holds"):  # --force would delete the weights being averaged (or the run that holds them)
            raise RuntimeError(f"{out}: it {how} the input {path}; give another output directory")
        if how == "inside":  # a folder of its own in a model, or in a run's epochs
            raise RuntimeError(f"{out}: inside the input {path}; give an output directory outside it")
    if len(set(p.resolve() for p in inputs)) < len(inputs):
        print_error("warning: a model is given more than once: it counts once for each time in the mean")
    if (taken := occupied(out)) and not args.force:
        raise RuntimeError(f"{out}: {taken}; give a new directory, or --force to replace it and all it holds")
    loaded, files = _inputs(inputs, args.last)
    template = loaded.path
    reference = loaded.model.state_dict()  # a run's epochs also hold its training-only phone head
    states = []
    for path in files:
        try:
            state = load_file(str(path))
        except Exception as e:  # safetensors' own error for a cut or damaged file
            raise RuntimeError(f"{path}: not readable as weights ({e})") from None
        if missing := [k for k in reference if k not in state]:
            raise RuntimeError(f"{path}: not {template}'s network ({len(missing)} of its tensors missing, such as "
                               f"{missing[0]})")
        for k, ref in reference.items():
            if state[k].shape != ref.shape:
                raise RuntimeError(f"{path}: {k} is {tuple(state[k].shape)} where {template}'s is {tuple(ref.shape)}: "
                                   "not one network to average")
            if state[k].is_floating_point() and not torch.isfinite(state[k]).all():
                # one such file makes the mean NaN (as load_model_dir refuses a model directory's)
                raise RuntimeError(f"{path}: {k} holds NaN or infinite weights")
        states.append({k: state[k] for k in reference})
    try:
        loaded.model.load_state_dict(average_state_dicts(states))
    except RuntimeError as e:  # a tensor of another shape: another width or vocabulary
        raise RuntimeError(f"{', '.join(map(str, files))}: not one network's weights ({str(e).splitlines()[-1].strip()})")
    if batch_norms(loaded.model):
        manifest = args.manifest or loaded.config.train.train_manifest
        if not manifest or not Path(manifest).is_file():
            raise RuntimeError(f"{template}: batch norm's statistics must be measured again for the mean weights, "
                               f"on the training data: give --manifest (the train manifest {manifest!r} "
                               f"{'is not there' if manifest else 'is not recorded'})")
        dataset = load_split(str(manifest), loaded.config, loaded.tokenizer, "train", quiet=True)
        read = refresh_batch_norm(loaded.model, dataset, loaded.config, torch.device("cpu"))
        print_error(f"batch norm: statistics of the mean weights measured on {read} utterances of {manifest}")
    check_writable(out.resolve(), directory=True)
    path = save_model_dir(out, loaded.config, loaded.model, loaded.tokenizer, half=loaded.half,
                          extra_files=provenance_files(template))
    make_portable(path)
    which = [f.stem if f.parent.name == "epochs" else str(f.parent) for f in files]
    print(f"{out}: the mean of {len(files)} models' weights ({', '.join(which)}); tune its search again "
          "(asr priors, asr lm tune) before searching with an LM")
    return 0


def _inputs(inputs: list[Path], last: int | None):
    """The model directory whose config, tokenizer and feature statistics the mean takes (loaded), and
    the weight files to average: a run's kept epochs (its last ``last``), or each directory's weights."""
    from asr.model_dir import load_model_dir
    from asr.tokenizers import TOKENIZER_FILE

    if len(inputs) == 1 and (inputs[0] / "epochs").is_dir():
        run = inputs[0]
        files = sorted((run / "epochs").glob("epoch-*.safetensors"))
        if last:
            files = files[-last:]
        if len(files) < 2:
            raise RuntimeError(f"{run}/epochs: {len(files)} epoch file(s); averaging needs 2 or more "
                               "(train with train.average_last=N to keep the last N)")
        template = next((run / name for name in ("best", "last") if (run / name / "config.yaml").is_file()), None)
        if template is None:
            raise RuntimeError(f"{run}: no best/ or last/ to take the config and tokenizer from")
        return load_model_dir(template), files
    if last:
        raise RuntimeError("--last takes the last epochs of one run directory (RUN, with RUN/epochs/)")
    if len(inputs) < 2 and not inputs[0].is_dir():
        raise RuntimeError(f"{inputs[0]}: run or model directory not found")
    if len(inputs) < 2:
        raise RuntimeError(f"{inputs[0]}: one model directory and no epochs/ in it: give two or more model "
                           "directories, or a run directory that kept its epochs (train.average_last)")
    first = load_model_dir(inputs[0])  # each a model directory (its files all there), or refused by name
    same_file = lambda other, name: (other / name).read_bytes() == (first.path / name).read_bytes()  # noqa: E731
    for path in inputs[1:]:
        other = load_model_dir(path)
        for differs, what in ((other.config.model != first.config.model, "network (config.yaml's model)"),
                              (other.config.features != first.config.features, "features (config.yaml's features)"),
                              (not same_file(other.path, TOKENIZER_FILE), "tokenizer"),
                              (not same_file(other.path, "cmvn.json"), "feature statistics")):
            if differs:
                raise RuntimeError(f"{path}: its {what} differs from {inputs[0]}'s: not one network to average")
    return first, [p / "model.safetensors" for p in inputs]

"""``asr export``: a model directory copied (float16 on request, with an LM packaged), a package
that rescores copied whole, or a tune-rescoring file made into one package; each written aside
and renamed into place, so DST appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

from asr.cli_systems import print_error


def cmd_export(args) -> int:
    from asr.atomic import atomic_dir, check_writable, occupied
    from asr.decoding_config import DECODING_FILE, PRIORS_FILE, carried_files, package_lm, packaged_lexicon_for
    from asr.model_dir import REQUIRED_FILES, load_model_dir, make_portable, save_model_dir
    from asr.provenance import provenance_files

    from asr.rescoring_files import RESCORING_FILE

    if args.lexicon and not args.lm:  # it would be left out silently: the copy would search with the LM's words
        raise RuntimeError("--lexicon is packaged with an LM: give --lm too")
    src, dst = Path(args.src), Path(args.dst)
    if src.is_file() and src.name in REQUIRED_FILES:  # else taken for a rescoring file, the one file SRC may be
        raise RuntimeError(f"{src}: a file of a model directory; export the directory, {src.parent}")
    _refuse_the_current_directory(dst)
    rescores = src.is_dir() and (src / RESCORING_FILE).is_file()  # a package that rescores (the built-in one)
    if rescores and not (args.half or args.lm or args.lexicon):  # copied whole, as its rescoring file makes it
        args.src = str(src / RESCORING_FILE)
    elif rescores:
        print_error(f"warning: {src} rescores with other systems ({RESCORING_FILE}); with --half, --lm or --lexicon "
                    "only its first system is exported, and the copy decodes by beam search alone")
    if Path(args.src).is_file():  # a tune-rescoring file: its systems become one package
        return _export_rescoring(args, rescores)
    loaded = load_model_dir(args.src)
    _refuse_nesting(loaded.path, dst)
    if (taken := occupied(dst)) and not args.force:
        raise RuntimeError(f"{dst}: {taken}; give a new directory, or --force to replace it and all it holds")
    check_writable(dst.resolve(), directory=True)  # DST is staged beside it (beside its target, for a link)
    carried = carried_files(loaded.path)  # tuned settings and a packaged LM (one outside it: copied in)
    if args.lm:  # keep the tuned weights and the token priors; the LM is replaced
        carried = {name: p for name, p in carried.items() if name in (DECODING_FILE, PRIORS_FILE)}
    carried.update(provenance_files(loaded.path))  # what the weights were trained from
    notes = []
    with atomic_dir(dst) as staged:  # a missing or unusable LM leaves DST as it was
        save_model_dir(staged, loaded.config, loaded.model, loaded.tokenizer, half=args.half or loaded.half,
                       extra_files=carried)
        if args.lm:  # the source package's own LM named by its path: searched with its lexicon (a binary has no words)
            lexicon = args.lexicon or packaged_lexicon_for(loaded.path, args.lm)
            notes = package_lm(staged, args.lm, loaded.tokenizer, lexicon=lexicon)
        make_portable(staged)  # its provenance names no folder of this machine's: it can be copied as is
    for note in notes:
        print_error(note.replace(str(staged), str(dst)))
    files = sorted(dst.iterdir())
    print(f"{args.dst}: {loaded.model.num_parameters():,} parameters, "
          f"{sum(f.stat().st_size for f in files) / 2**20:.1f} MiB ({', '.join(f.name for f in files)})")
    return 0


def _refuse_the_current_directory(dst: Path) -> None:
    """DST is renamed into place: the directory a shell stands in (or one above it) would be swapped
    for another under it, and "." has no name to stage a sibling by."""
    from asr.atomic import overlap

    if (how := overlap(dst, Path.cwd())) in ("is", "holds"):
        raise RuntimeError(f"{dst}: the current directory{'' if how == 'is' else ' lies inside it'}: export "
                           "into a new directory, from outside the one it replaces")


def _refuse_nesting(src: Path, dst: Path) -> None:
    """DST over the model's run folder (``asr export RUN/best RUN --force``) would replace the run,
    its checkpoints and logs with the copy; DST inside the model would make it a folder of the copy.
    DST the model itself is an export in place (--half)."""
    from asr.atomic import overlap

    how = overlap(dst, src)
    if how == "holds":
        raise RuntimeError(f"{dst}: holds the model exported ({src.resolve()}): replacing it would delete the "
                           "model and all beside it; export into a new directory")
    if how == "inside":
        raise RuntimeError(f"{dst}: inside the model exported ({src.resolve()}); export into a directory outside it")


def _export_rescoring(args, rescores: bool) -> int:
    """A tune-rescoring file (or a package that rescores, by its rescoring.yaml) -> one package at DST."""
    from asr.atomic import check_writable, occupied
    from asr.manifest import own_folder
    from asr.rescoring_files import RESCORING_FILE, RescoringError, package_rescoring, read_rescoring

    src, dst = Path(args.src), Path(args.dst)
    try:
        first = Path(read_rescoring(src)[0][0])
    except RescoringError as e:  # a manifest, an audio file, a config given by mistake
        raise RescoringError(f"{e}; asr export takes a model directory or a tune-rescoring file") from None
    if args.half or args.lm or args.lexicon:
        raise RuntimeError(f"{src}: a rescoring file's systems are packaged as they are (no --half, --lm, "
                           f"--lexicon): for those, export its first system, {first}")
    # A package's own rescoring.yaml (its first system "."): the package, as if SRC named its folder
    rescores = rescores or (src.name == RESCORING_FILE and first.resolve() == own_folder(src).resolve())
    # --force as for a model directory: package_rescoring replaces DST whole once the package is
    # staged beside it, so systems that lie inside DST are read first
    if (taken := occupied(dst)) and dst.resolve() != first.resolve() and not args.force:
        how = "" if rescores else "the first system's own, "
        raise RuntimeError(f"{dst}: {taken}; give a new directory, {how}or --force to replace it and all it holds")
    check_writable(dst.resolve(), directory=True)
    written, notes = package_rescoring(args.src, dst, force=args.force)
    for note in notes:
        print_error(note)
    systems = sorted((p for p in dst.glob("system*") if p.is_dir() and p.name[6:].isdigit()),
                     key=lambda p: int(p.name[6:]))
    retune = (f" --combine {' '.join(str(p) for p in systems)}" if systems else "") + (
        f" --rnnlm {dst / 'rnnlm'}" if (dst / "rnnlm").is_dir() else "")
    if rescores:  # a copy of a tuned package: its weights still hold
        print(f"{dst}: the package copied whole, with its {len(systems) + 1} systems and their tuned rescoring")
        return 0
    print(f"{written}: the package rescores; re-tune it on a dev set (asr tune-rescoring DEV --model "
          f"{dst}{retune} -o {written})")
    return 0

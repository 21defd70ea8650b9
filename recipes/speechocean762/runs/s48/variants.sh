#!/bin/bash
# Session 48, before retraining: every pronunciation variant (corpus lexicon and cmudict) in the
# built-in phone systems' search lexicons (varlex.py), and rescoring's phone score over the variants
# (run_var.py, a monkeypatch of asr.rescoring.ctc_log_likelihoods: one pass of coordinate ascent).
# mkpkg.py: a fine-tuned run made searchable by hand with system2's search settings (optionally
# with the variants), as scored in README.md's "cmudict-first phone spellings".
. "$(dirname "$0")/../lib.sh"
R=recipes/speechocean762/runs/s48 X=exp/s48/variants
mkdir -p $X
python $R/varlex.py asr/pretrained/default/system2/lexicon.txt $X/lex_var.txt
rm -rf $X/pkg_var && cp -r asr/pretrained/default $X/pkg_var
for s in system2 system3 system4; do cp $X/lex_var.txt $X/pkg_var/$s/lexicon.txt; done
E="data/so762/valid.jsonl --decode-workers 1"
OMP_NUM_THREADS=1 asr evaluate $E --model $X/pkg_var | grep "^WER"                                  # search
OMP_NUM_THREADS=1 VARLEX=$X/lex_var.txt python $R/run_var.py evaluate $E --model $X/pkg_var | grep "^WER"  # both
OMP_NUM_THREADS=1 VARLEX=$X/lex_var.txt python $R/run_var.py evaluate $E | grep "^WER"                # rescoring

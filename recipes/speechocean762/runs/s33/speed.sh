#!/bin/bash
# The built-in package (prior correction) against the R3g package (exp/s33/pkg0: same files, old settings), alternating.
for i in 1 2; do
  for m in asr/pretrained/default exp/s33/pkg0; do
    echo "$m $(date -u +%T) $(OMP_NUM_THREADS=1 asr evaluate data/so762/test.jsonl --model $m --decode-workers 1 --json 2>/dev/null | tail -n 1 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["decode_seconds"], d["rtf"], d["wer"])')"
  done
done

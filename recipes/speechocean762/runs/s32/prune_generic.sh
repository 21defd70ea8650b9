set -e
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && . .venv/bin/activate
for th in 1e-8 1e-7; do
  asr lm prune exp/lmx/cmu_3gram.arpa -o exp/s32/cmu_p$th.arpa --threshold $th
  asr lm mix exp/lmx/train_4gram.arpa exp/lmx/lj_4gram.arpa exp/s32/cmu_p$th.arpa -o exp/s32/mixg_p$th.arpa --dev data/so762/valid.jsonl
  d=exp/s32/pkg_g$th; rm -rf $d; cp -r asr/pretrained/default $d; rm $d/lm.bin
  .venv/bin/build_binary -a 22 -q 8 -b 8 trie exp/s32/mixg_p$th.arpa $d/lm.bin > /dev/null 2>&1; ls -la $d/lm.bin
  asr evaluate data/so762/valid.jsonl --model $d --json 2>/dev/null | tail -1 | cut -c1-120
done
asr lm perplexity exp/lmx/mix3.arpa exp/s32/mixg_p1e-8.arpa exp/s32/mixg_p1e-7.arpa --texts data/so762/valid.jsonl

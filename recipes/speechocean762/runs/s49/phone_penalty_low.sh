#!/bin/bash
# Session 49: phone_penalty.sh's two system2 searches tuned again with the LM weight's grid extended
# below its lower edge (2, where the penalized system's search landed): 1 to 2.5, the rest as before,
# into copies of the packages (pkg_s2ctl_low, pkg_s2cp_low). The penalized search chose LM weight 2
# again (51.30%), so dev was not scored again.
#   bash recipes/speechocean762/runs/s49/phone_penalty_low.sh
. "$(dirname "$0")/../lib.sh"
X=exp/s49
for r in s2ctl s2cp; do
  rm -rf $X/pkg_${r}_low && cp -r $X/pkg_$r $X/pkg_${r}_low
  lmtune_search $X/pkg_${r}_low/system2 $X/pkg_${r}_low/lm.bin $X/pkg_${r}_low/system2/lexicon.txt \
      $X/pkg_${r}_low.lmtune.log 1,1.5,2,2.5
done

"""Sentences sampled from a backoff ARPA LM (here: the generic en-us 3-gram), as extra text for
the LSTM LM. Backoff sampling: with the explicit n-grams' mass pick one of them, else back off
(the lower order's words already explicit are not excluded: a small bias toward them)."""
import math, random, re, sys
from collections import defaultdict

arpa, n_out, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
succ = [defaultdict(lambda: ([], [])) for _ in range(3)]  # order-1 context -> (words, probs)
order = 0
for line in open(arpa, encoding="utf-8"):
    m = re.match(r"^\\(\d)-grams:", line)
    if m:
        order = int(m.group(1)); continue
    if not order or "\t" not in line:
        continue
    f = line.rstrip("\n").split("\t")
    ws = f[1].split()
    if ws[-1] in ("<s>", "<unk>"):
        continue
    words, probs = succ[order - 1][tuple(ws[:-1])]
    words.append(ws[-1]); probs.append(10 ** float(f[0]))
tables = [{h: (w, p, sum(p)) for h, (w, p) in s.items()} for s in succ]
rng = random.Random(seed)


def draw(words, probs, total):
    r = rng.random() * total
    for w, p in zip(words, probs):
        r -= p
        if r <= 0:
            return w
    return words[-1]


out = []
while len(out) < n_out:
    hist = ["<s>"]
    while len(hist) < 40:
        for n in (2, 1, 0):  # trigram context, bigram, unigram
            ctx = tuple(hist[-n:]) if n else ()
            if ctx in tables[n]:
                words, probs, mass = tables[n][ctx]
                if n == 0 or rng.random() < min(mass, 1.0):
                    w = draw(words, probs, mass); break
        if w == "</s>":
            break
        hist.append(w)
    if len(hist) > 1:
        out.append(" ".join(hist[1:]))
print("\n".join(out))

"""Audit a quiz run: every generation answer scored correct names its gold choice at the start of its first
non-empty line (after an optional 答えは/回答:), by its label or its text. Reads the samples the suite wrote.

    python examples/quiz_answers_at_start.py results [more results folders]
"""
import glob, json, re, sys, unicodedata
bad = correct = total = 0
for path in sys.argv[1:]:
    for p in glob.glob(f"{path}/*/samples_quiz_*_gen-*.jsonl"):
        for line in open(p, encoding="utf-8"):
            s = json.loads(line)
            total += 1
            if s["acc"] != 1.0:
                continue
            correct += 1
            gold, text = s["doc"]["gold"], s["doc"]["choices"][s["doc"]["gold"]]
            first = next(l for l in unicodedata.normalize("NFKC", s["generation"]).split("\n") if l.strip()).strip()
            first = re.sub(r"^(?:(?:答え|こたえ|回答|解答|正解|正答|選択肢|answer)\s*(?:は|:)?\s*)+", "", first, flags=re.I)
            if not (re.match(rf"^[(\[（【]?{gold}(?!\d)", first) or first.replace(" ", "").startswith(text.replace(" ", ""))):
                bad += 1
                print("NOT AT START:", p, s["doc_id"], repr(s["generation"][:80]))
print(f"{total} generation answers, {correct} scored correct, {bad} of them without the gold choice at the start of the first line")

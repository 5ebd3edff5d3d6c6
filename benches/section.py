"""Puts a section into docs/BENCHMARKS.md: `section.py FILE TEXT` replaces the
section whose heading is TEXT's first line (up to the next `## ` heading), or
adds TEXT at the end when there is none. benches/enrich.sh and report.sh use it."""
import re
import sys

path, section = sys.argv[1], sys.argv[2].rstrip() + "\n"
heading = section.splitlines()[0]
text = open(path).read()
pattern = re.compile("^" + re.escape(heading) + r"\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda m: section + "\n", text)
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text.rstrip() + "\n")

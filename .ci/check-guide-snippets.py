"""Checks that every ```swift block of a DocC guide stands, line for line (indentation aside), in the code
of an example that CI builds and tests. Usage: check-guide-snippets.py GUIDE SOURCE_DIR"""
import pathlib
import re
import sys

guide, source_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
sources = [[line.strip() for line in path.read_text().splitlines()] for path in source_dir.rglob("*.swift")]
blocks = re.findall(r"```swift\n(.*?)```", guide.read_text(), re.S)
if not blocks:
    sys.exit(f"{guide}: no swift snippets found")
missing = 0
for block in blocks:
    lines = [line.strip() for line in block.strip().splitlines()]
    found = any(
        source[start:start + len(lines)] == lines for source in sources for start in range(len(source) - len(lines) + 1)
    )
    if not found:
        missing += 1
        print(f"{guide.name}: this snippet is not in {source_dir}:\n{block}", file=sys.stderr)
if missing:
    sys.exit(f"{missing} of {len(blocks)} snippets are not in the example's code")
print(f"{guide.name}: all {len(blocks)} swift snippets stand in {source_dir}")

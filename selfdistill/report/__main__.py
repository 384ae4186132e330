"""`python -m selfdistill.report RUN_DIR`: write RUN_DIR/report.md and RUN_DIR/report.html, print both paths."""

from __future__ import annotations

import sys
from pathlib import Path

from selfdistill.errors import SelfdistillError
from selfdistill.report.render import render_report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m selfdistill.report RUN_DIR", file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        paths = render_report(Path(args[0]))
    except SelfdistillError as exc:
        print(exc, file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

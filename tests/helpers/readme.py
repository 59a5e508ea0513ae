"""The README as tests read it: its fenced blocks, the HTML-comment markers before them, its main command
and the paths the paragraph before that command promises."""
import os
import re

from ..conftest import REPO

with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as _f:
    README = _f.read()
FENCE = re.compile(r'^```(\w*)\n(.*?)^```[ \t]*$', re.S | re.M)
SETUP_STEP = re.compile(r'^(python3? -m venv\b|\.\s+\S*activate\b|source\s+\S*activate\b|bash tools/install\.sh\b)')


def blocks(text: str = README) -> list:
    """``(language, body, marker, start)`` of each fenced block; ``marker`` is the text of an HTML comment
    on the line just before it, if any."""
    found = []
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip('\n').rsplit('\n', 1)[-1].strip()
        marker = before[4:-3].strip() if before.startswith('<!--') and before.endswith('-->') else None
        found.append((match.group(1), match.group(2), marker, match.start()))
    return found


def as_run_here(command: str) -> str:
    """The command without the steps that make the environment (joined again with ``&&``)."""
    steps = [s.strip() for s in command.replace('\\\n', ' ').strip().split('&&')]
    return ' && '.join(s for s in steps if not SETUP_STEP.match(s))


def marked(marker: str) -> list:
    return [body for language, body, mark, _ in blocks() if mark == marker and language in ('', 'bash', 'shell', 'sh')]


def main_command() -> tuple:
    """The main command and the ``work_dirs/...`` paths that the paragraph before it promises."""
    (body, start), = [(body, start) for _, body, mark, start in blocks() if mark == 'main-command']
    paragraph = README[:start].rsplit('\n\n', 2)[-2]
    return as_run_here(body), re.findall(r'`(work_dirs/[^`\s]+)`', paragraph)

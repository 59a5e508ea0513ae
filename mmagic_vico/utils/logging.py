"""What a tool prints: progress bars, one line per log interval, where the outputs went, real warnings once.

Each tool calls :func:`setup_logging` first. The runner's environment report, config dump, hook table
and parameter groups then go to the log file only (to the terminal as well with ``--verbose``), and
warnings that do not apply to this project are dropped. The one place that decides what is noise.
"""
import logging
import re
import warnings

#: mmengine records the terminal shows only with --verbose; the log file of the work dir always has them.
VERBOSE_ONLY = re.compile(r'\s*-+\s*System environment:|Config:\n|Hooks will be executed in the following order'
                          r'|paramwise_options -- |Distributed training is not used')
#: mmengine's notes about its own internals, which no setting of ours can change (kept in the log file).
NOT_APPLICABLE = re.compile(r'"(FileClient" will be deprecated|HardDiskBackend" is the alias)')
#: Dependency loggers and their messages that do not apply here: transformers falls back to its PIL
#: image processors because the project does not install torchvision, which is what we want.
DEPENDENCY_NOISE = {
    'transformers.utils.import_utils': re.compile(r'`\w+` requires torchvision \(not installed\); falling back'),
}

_verbose = {'on': False}
_format_warning = warnings.formatwarning


class DropMatching(logging.Filter):
    """Drops (and counts) records whose message starts with a match of ``pattern``."""

    def __init__(self, pattern: re.Pattern):
        super().__init__()
        self.pattern, self.dropped = pattern, 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern.match(record.getMessage()) is None:
            return True
        self.dropped += 1
        return False


def _add_filter_once(target, pattern: re.Pattern) -> None:
    if not any(isinstance(f, DropMatching) and f.pattern is pattern for f in target.filters):
        target.addFilter(DropMatching(pattern))


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f'{category.__name__}: {message}\n'


def add_verbose_flag(parser) -> None:
    """The ``--verbose`` flag every tool takes."""
    parser.add_argument('--verbose', action='store_true',
                        help='also print the config, the hook order and the parameter groups (the log file has them '
                             'anyway), and where each Python warning comes from')


def drop_dependency_noise() -> None:
    """Install the filters of :data:`DEPENDENCY_NOISE` (idempotent). The package does this when it is imported,
    since some of those messages come while modules load, before a tool's ``main`` runs."""
    for name, pattern in DEPENDENCY_NOISE.items():
        _add_filter_once(logging.getLogger(name), pattern)


def setup_logging(verbose: bool = False) -> None:
    """Quiet terminal for a tool (``verbose``: the full mmengine report). Idempotent."""
    _verbose['on'] = verbose
    drop_dependency_noise()
    # a warning is one line naming its kind; with --verbose, Python's form (file, line, source)
    warnings.formatwarning = _format_warning if verbose else _one_line_warning
    project = logging.getLogger('mmagic_vico')  # our own messages outside a runner (the demo's)
    if not project.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(message)s', datefmt='%H:%M:%S'))
        project.addHandler(handler)
    project.setLevel(logging.DEBUG if verbose else logging.INFO)


def quiet_terminal(logger):
    """Filter the terminal handlers of an mmengine ``MMLogger`` (not its log file) as set up above."""
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) or not isinstance(handler, logging.StreamHandler):
            continue
        _add_filter_once(handler, NOT_APPLICABLE)
        if not _verbose['on']:
            _add_filter_once(handler, VERBOSE_ONLY)
    return logger

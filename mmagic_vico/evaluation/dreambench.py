"""The DreamBench protocol (Ruiz et al., DreamBooth, arXiv 2208.12242): subjects, their classes, and
the 25 object / 25 live-subject prompts, read from the dataset's own ``prompts_and_classes.txt``."""
import os
import re
from dataclasses import dataclass, field

from mmagic_vico.utils.errors import InvalidValueError, MissingFileError
#: DreamBench's live subjects are its cats and dogs; every other class takes the object prompts.
LIVE_CLASSES = ('cat', 'dog')
_PROMPT = re.compile(r"^'(.*)'\.format\(unique_token, class_token\),?$")


@dataclass
class DreamBenchProtocol:
    classes: dict = field(default_factory=dict)  # subject -> class noun
    object_prompts: list = field(default_factory=list)  # templates with {0} (token) and {1} (class)
    live_prompts: list = field(default_factory=list)

    def prompts(self, subject: str, token: str | None) -> list:
        """The prompts of ``subject`` (25 in DreamBench) with ``token`` as its unique token; without one (None: the base
        model), the class alone ("a dog in the snow")."""
        if subject not in self.classes:
            raise KeyError(f'subject {subject!r} is not in the protocol; known: {sorted(self.classes)}')
        noun = self.classes[subject]
        templates = self.live_prompts if noun in LIVE_CLASSES else self.object_prompts
        return [' '.join(t.format(token or '', noun).split()) for t in templates]

    def text_prompts(self, subject: str) -> list:
        """The same prompts without the unique token, as CLIP-T scores them ("a dog in the snow")."""
        return self.prompts(subject, None)


def read_dreambench(path: str) -> DreamBenchProtocol:
    """Parse ``prompts_and_classes.txt`` (a file path or the dataset folder holding it)."""
    if os.path.isdir(path):
        path = os.path.join(path, 'prompts_and_classes.txt')
    if not os.path.isfile(path):
        raise MissingFileError(f'{path!r} does not exist: give the DreamBench folder (with prompts_and_classes.txt) '
                               'or a prompt file in its format.')
    protocol, section = DreamBenchProtocol(), None
    with open(path, encoding='utf-8') as f:
        for raw in f:
            line = raw.strip()
            if line in ('Classes', 'Object Prompts', 'Live Subject Prompts'):
                section = line
            elif section == 'Classes' and ',' in line and line != 'subject_name,class':
                subject, noun = line.split(',', 1)
                protocol.classes[subject.strip()] = noun.strip()
            elif _PROMPT.match(line):
                target = protocol.object_prompts if section == 'Object Prompts' else protocol.live_prompts
                target.append(_PROMPT.match(line).group(1))
    if not protocol.classes or not protocol.object_prompts or not protocol.live_prompts:
        raise InvalidValueError(f'{path} has {len(protocol.classes)} subjects, {len(protocol.object_prompts)} object '
                                f'and {len(protocol.live_prompts)} live prompts: it is not in the DreamBench format. '
                                'Give the dataset folder of google/dreambooth as it is (its prompts_and_classes.txt '
                                "lists the subjects with their classes, then the object and live prompts as 'a {0} "
                                "{1} ...'.format(unique_token, class_token) lines).")
    return protocol

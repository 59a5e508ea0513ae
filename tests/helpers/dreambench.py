"""A small DreamBench for tests: the real protocol file cut to its first prompts, and the real photos
of a few subjects linked (never copied) from ../shared/data/dreambench."""
import os

from ..conftest import DREAMBENCH


def small_dreambench(folder, subjects=('dog7', 'teapot'), num_prompts: int = 3) -> str:
    """``folder`` as a DreamBench dataset of ``subjects`` with ``num_prompts`` object and live prompts."""
    os.makedirs(folder, exist_ok=True)
    kept, in_list = [], 0
    with open(os.path.join(DREAMBENCH, 'prompts_and_classes.txt'), encoding='utf-8') as f:
        for line in f:
            if line.startswith("'"):
                in_list += 1
                if in_list > num_prompts:
                    continue
            elif line.startswith(('prompt_list', ']')):
                in_list = 0
            kept.append(line)
    with open(os.path.join(folder, 'prompts_and_classes.txt'), 'w', encoding='utf-8') as f:
        f.writelines(kept)
    for subject in subjects:
        link = os.path.join(folder, subject)
        if not os.path.exists(link):
            os.symlink(os.path.join(DREAMBENCH, subject), link)
    return str(folder)
